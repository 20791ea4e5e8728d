"""The Celery application: notifications, sealing and expiry checks run here.

Workers and beat are stateless: the broker and PostgreSQL hold every piece of
state, so any number of them can run.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fintech.settings.dev")

app = Celery("fintech")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
