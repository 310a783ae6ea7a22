# The worker and the simulator (same image, different command).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY stream_app ./stream_app
COPY models ./models
RUN pip install --no-cache-dir .
ENV SV_WEB_HOST=0.0.0.0
EXPOSE 6066
CMD ["stream-app", "worker"]
