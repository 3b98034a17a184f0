FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --system --uid 10001 --home-dir /app riposte

COPY . .
# Editable, so the packages stay in /app next to alembic.ini and alembic/, which
# engine/store/migrate.py finds relative to itself (`riposte db upgrade`); a plain
# `pip install .` copies only the packages into site-packages and migrations would be missing.
RUN pip install -e . && python -c "import engine.store.migrate as m; assert m.ALEMBIC_INI.is_file()"

USER riposte
EXPOSE 8000
ENTRYPOINT ["riposte"]
CMD ["serve", "--host", "0.0.0.0"]
