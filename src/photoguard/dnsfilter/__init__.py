"""The school network's DNS filter (``photoguard dns ...``)."""
