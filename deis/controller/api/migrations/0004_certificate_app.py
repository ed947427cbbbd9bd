# Certificates belong to apps: unique per owner (not globally), Workflow's facts (starts, issuer,
# subject, fingerprint, san), and attachments to the custom domains they are served for.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def attach_existing(apps, schema_editor):
    """Existing certificates: record their facts and attach each to the domains it covers of the
    apps its owner owns or shares (not as an admin), as the router served them: by common name,
    the first covering a domain wins. One the router would refuse (a short key, a key not its own,
    a name that is not a host name) stays listed, for its owner to delete, but is attached to nothing."""
    from deis.router import tls

    Certificate = apps.get_model("api", "Certificate")
    CertificateDomain = apps.get_model("api", "CertificateDomain")
    Domain = apps.get_model("api", "Domain")
    App = apps.get_model("api", "App")
    taken = set()
    for cert in Certificate.objects.order_by("common_name", "created"):
        try:
            info = tls.check_pair(cert.certificate, cert.key, allow_expired=True)
        except tls.CertificateProblem:
            continue
        except Exception:  # noqa: BLE001 - a certificate the checks cannot read is not served
            continue
        cert.starts, cert.issuer, cert.subject = info.starts, info.issuer, info.subject
        cert.fingerprint, cert.san = info.fingerprint, list(info.san)
        cert.save(update_fields=["starts", "issuer", "subject", "fingerprint", "san"])
        shared = App.collaborators.through.objects.filter(user=cert.owner_id).values("app_id")
        own = App.objects.filter(models.Q(owner=cert.owner_id) | models.Q(uuid__in=shared))
        for domain in Domain.objects.filter(app__in=own).order_by("domain"):
            if domain.pk not in taken and info.covers(domain.domain):
                CertificateDomain.objects.create(certificate=cert, domain=domain)
                taken.add(domain.pk)


class Migration(migrations.Migration):

    dependencies = [
        ('api', '0003_rollouts'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='certificate',
            name='fingerprint',
            field=models.CharField(blank=True, default='', max_length=96),
        ),
        migrations.AddField(
            model_name='certificate',
            name='issuer',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.AddField(
            model_name='certificate',
            name='san',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='certificate',
            name='starts',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='certificate',
            name='subject',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.AlterField(
            model_name='certificate',
            name='common_name',
            field=models.CharField(max_length=253),
        ),
        migrations.CreateModel(
            name='CertificateDomain',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('certificate', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attachments', to='api.certificate')),
                ('domain', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='certificate_attachment', to='api.domain')),
            ],
            options={
                'ordering': ['domain__domain'],
            },
        ),
        migrations.AddField(
            model_name='certificate',
            name='domains',
            field=models.ManyToManyField(blank=True, related_name='certificates', through='api.CertificateDomain', to='api.domain'),
        ),
        migrations.AddConstraint(
            model_name='certificate',
            constraint=models.UniqueConstraint(fields=('owner', 'common_name'), name='certificate_owner_common_name'),
        ),
        migrations.RunPython(attach_existing, migrations.RunPython.noop),
    ]
