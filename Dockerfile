# The one image every LeadLedger service in compose.yaml runs (api and the workers).
FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir /app && useradd --create-home leadledger \
    && mkdir -p /var/lib/leadledger/analytics && chown -R leadledger /var/lib/leadledger
USER leadledger
EXPOSE 8000 9108
CMD ["leadledger", "serve", "--host", "0.0.0.0", "--port", "8000"]
