"""Deployment files: the nginx site rendered from its one template (``python -m deploy.render``)."""
