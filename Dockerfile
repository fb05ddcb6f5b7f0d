# One image for every ilrs-ops service; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ilrs_ops ilrs_ops
COPY pipelines pipelines
RUN pip install --no-cache-dir .
COPY hardware_profiles hardware_profiles
ENV ILRS_PROFILES=/app/hardware_profiles
ENTRYPOINT ["ilrs-ops"]
