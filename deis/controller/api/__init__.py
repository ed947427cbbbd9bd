"""The Deis v1 API: models, serializers, views and urls, in Django's usual places."""
