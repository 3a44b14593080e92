"""The guide's "before": Django under gunicorn (gthread), one OS thread per request, stock sync middleware,
and sync SQLAlchemy (psycopg) running the same statements, presenters and templates as the real site."""
