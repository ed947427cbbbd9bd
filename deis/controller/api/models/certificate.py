"""A TLS certificate and its key, owned by the user who uploaded it and served only for the custom
domains it is attached to (Deis Workflow's model: fields name, common_name, san, domains,
fingerprint, expires, starts, issuer, subject).

Attachment rule: a certificate is attached to a domain only when it covers it (its common name or
a DNS SAN, `*.` standing for one label) and the domain belongs to an app its owner may use (owner
or collaborator). It happens on upload (every such domain of the uploader's apps that has no
certificate yet), when the uploader adds such a domain later, and on request
(POST /v1/certs/<name>/domain/). A domain serves at most one certificate. The router is told of an
attachment only while the certificate's owner may still use the domain's app (see
runtime.route_certificates), so a transfer or a removed collaborator stops it being served.

Destroying an app removes the certificates attached only to its domains; one also attached to a
domain of another app stays (with its other attachments), and one never attached stays too.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

from deis.lazy import lazy_module

from .app import App
from .base import UuidAuditedModel
from .domain import Domain

tls = lazy_module("deis.router.tls")  # cryptography: only for certificates


class Certificate(UuidAuditedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="certs")
    # The v1 name of the certificate (`/v1/certs/<common_name>`; Workflow's `name`): the host it
    # was uploaded for, read from the certificate or given. Unique per owner, not globally.
    common_name = models.CharField(max_length=253)
    certificate = models.TextField()
    key = models.TextField()
    expires = models.DateTimeField()
    starts = models.DateTimeField(null=True, blank=True)
    issuer = models.TextField(blank=True, default="")
    subject = models.TextField(blank=True, default="")
    fingerprint = models.CharField(max_length=96, blank=True, default="")
    san = models.JSONField(default=list, blank=True)  # DNS subject alternative names
    domains = models.ManyToManyField(Domain, through="CertificateDomain", related_name="certificates", blank=True)

    class Meta:
        ordering = ["common_name"]
        constraints = [models.UniqueConstraint(fields=["owner", "common_name"], name="certificate_owner_common_name")]

    def __str__(self):
        return self.common_name

    @property
    def name(self) -> str:
        return self.common_name

    def info(self) -> tls.CertificateInfo:
        return tls.check_pair(self.certificate, self.key, allow_expired=True)

    def covers(self, host: str) -> bool:
        try:
            return self.info().covers(host)
        except tls.CertificateProblem:
            return False

    def usable_apps(self):
        """The apps whose domains this certificate may serve: those its owner owns or shares."""
        if self.owner.is_superuser:
            return App.objects.all()
        shared = App.collaborators.through.objects.filter(user=self.owner_id).values("app_id")
        return App.objects.filter(models.Q(owner=self.owner_id) | models.Q(uuid__in=shared))

    def attach_covered(self) -> list[str]:
        """Attach to every domain it covers of the apps its owner owns or shares (not as an admin:
        an admin's certificate is attached to others' domains only on request) that has no
        certificate yet; the domains attached."""
        if tls.problem(self.certificate, self.key):
            return []
        shared = App.collaborators.through.objects.filter(user=self.owner_id).values("app_id")
        own = App.objects.filter(models.Q(owner=self.owner_id) | models.Q(uuid__in=shared))
        info = self.info()
        attached = []
        for domain in Domain.objects.filter(app__in=own, certificate_attachment__isnull=True).order_by("domain"):
            if info.covers(domain.domain):
                CertificateDomain.objects.create(certificate=self, domain=domain)
                attached.append(domain.domain)
        return attached


class CertificateDomain(models.Model):
    """One domain served with one certificate (a domain has at most one)."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="attachments")
    domain = models.OneToOneField(Domain, on_delete=models.CASCADE, related_name="certificate_attachment")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["domain__domain"]


@receiver(post_save, sender=Domain, dispatch_uid="certificate_attach_new_domain")
def _attach_new_domain(sender, instance: Domain, created: bool, raw: bool = False, **kwargs):
    """A domain added by a user who uploaded a certificate covering it: the newest such one serves it."""
    if not created or raw or CertificateDomain.objects.filter(domain=instance).exists():
        return
    for cert in Certificate.objects.filter(owner=instance.owner_id).order_by("-created"):
        if tls.problem(cert.certificate, cert.key) is None and cert.covers(instance.domain) \
                and cert.usable_apps().filter(pk=instance.app_id).exists():
            CertificateDomain.objects.create(certificate=cert, domain=instance)
            return


@receiver(pre_delete, sender=App, dispatch_uid="certificate_app_destroyed_collect")
def _collect_app_certificates(sender, instance: App, **kwargs):
    """Note the certificates attached only to this app's domains: they go with it."""
    mine = Certificate.objects.filter(attachments__domain__app=instance).values("pk")
    elsewhere = CertificateDomain.objects.filter(certificate__in=mine).exclude(domain__app=instance) \
        .values("certificate")
    instance._certificates_to_remove = list(
        Certificate.objects.filter(pk__in=mine).exclude(pk__in=elsewhere).values_list("pk", flat=True))


@receiver(post_delete, sender=App, dispatch_uid="certificate_app_destroyed_remove")
def _remove_app_certificates(sender, instance: App, **kwargs):
    pks = getattr(instance, "_certificates_to_remove", None)
    if pks:
        Certificate.objects.filter(pk__in=pks, attachments__isnull=True).delete()
