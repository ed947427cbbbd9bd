"""The controller: a Django project that owns the platform's truth and serves the Deis v1 API."""
