"""Serving genlab runs over HTTP: one framework-free core (`service.Service`: loading, validation,
micro-batching, authentication, metrics) behind a FastAPI app, a Flask app and the cloud
contracts (SageMaker, Vertex AI, Azure ML). See docs/deploy.md."""
