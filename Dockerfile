FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY models models
COPY services services
COPY schema schema
COPY jobs jobs
COPY web web
COPY runtime runtime
COPY providers providers
COPY simulator simulator
COPY server.py settings.py cli.py ./
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["campaigns", "serve", "--host", "0.0.0.0", "--port", "8000"]
