"""keelwatch: observability and drift monitoring for ML and LLM models in production."""
