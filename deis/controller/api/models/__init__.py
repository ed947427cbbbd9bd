"""The platform's truth: apps, their builds, configs and releases, and what users own.

One model a file, as Deis Workflow's controller has them; import them from here."""

from .app import App, lock_app
from .appsettings import AppSettings
from .base import UuidAuditedModel, app_url
from .build import Build
from .certificate import Certificate, CertificateDomain
from .config import Config
from .domain import Domain
from .job import Job
from .key import Key
from .push import Push
from .release import Release
from .rollout import ROLLOUT_PHASES, Rollout
from .route import AppRoute

__all__ = ["App", "AppRoute", "AppSettings", "Build", "Certificate", "CertificateDomain", "Config", "Domain", "Job", "Key", "Push", "Release", "Rollout",
           "ROLLOUT_PHASES", "UuidAuditedModel", "app_url", "lock_app"]
