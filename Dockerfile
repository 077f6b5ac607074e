# One image for web, worker and beat (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY sei_admin ./sei_admin
COPY smtp_settings ./smtp_settings
COPY external_text ./external_text
RUN pip install --no-cache-dir .
COPY manage.py gunicorn.conf.py ./
COPY templates ./templates
COPY static ./static
# collectstatic loads the settings, which insist on secrets: give it throw-away ones.
RUN DJANGO_SECRET_KEY=collectstatic-only \
    SEI_ENCRYPTION_KEYS=$(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())") \
    python manage.py collectstatic --noinput
RUN useradd --system --home /app sei && mkdir -p /app/var && chown sei /app/var
USER sei
EXPOSE 8000
CMD ["gunicorn", "sei_admin.wsgi", "--bind", "0.0.0.0:8000"]
