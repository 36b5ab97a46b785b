"""What follows publication: consent propagation, retention, review, enrolment, reports."""
