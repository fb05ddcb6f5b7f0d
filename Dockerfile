# One image for every ilrs-ops service; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ilrs_ops ilrs_ops
COPY pipelines pipelines
RUN pip install --no-cache-dir .
COPY hardware_profiles hardware_profiles
# The entry point reads the service's MQTT password from the generated credentials file (see
# deploy/ilrs-entrypoint); the health check looks for the service's link to the broker.
COPY deploy/ilrs-entrypoint /usr/local/bin/ilrs-entrypoint
COPY deploy/mqtt_connected.py /usr/local/bin/mqtt_connected.py
ENV ILRS_PROFILES=/app/hardware_profiles
ENTRYPOINT ["/bin/sh", "/usr/local/bin/ilrs-entrypoint"]
