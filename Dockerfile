# keelwatch server, dashboards and demo model in one image (the command picks the role).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY collector ./collector
COPY store ./store
COPY detectors ./detectors
COPY alerts ./alerts
COPY dashboards ./dashboards
RUN pip install --no-cache-dir ".[server,dashboards]"
EXPOSE 8787 8501
CMD ["keelwatch", "serve", "--host", "0.0.0.0"]
