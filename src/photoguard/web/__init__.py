"""The school's web app (``photoguard web``): login, the review queue, teachers' uploads.

:mod:`photoguard.web.passwords` needs only the standard library (the ``user`` command uses it);
everything else here needs Starlette, Jinja2 and uvicorn. See docs/WEB.md.
"""
