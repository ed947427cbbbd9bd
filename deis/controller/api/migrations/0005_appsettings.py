# Apps' routing settings (Workflow's AppSettings): maintenance mode and the allow-list, one row an
# app; the apps made before get theirs here (off, everybody allowed: what the router did).

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


def settings_for_existing_apps(apps, schema_editor):
    App = apps.get_model("api", "App")
    AppSettings = apps.get_model("api", "AppSettings")
    have = set(AppSettings.objects.values_list("app_id", flat=True))
    AppSettings.objects.bulk_create([AppSettings(app_id=pk, owner_id=owner, uuid=uuid.uuid4())
                                     for pk, owner in App.objects.values_list("pk", "owner_id") if pk not in have])


class Migration(migrations.Migration):

    dependencies = [
        ('api', '0004_certificate_app'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AppSettings',
            fields=[
                ('uuid', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('updated', models.DateTimeField(auto_now=True)),
                ('maintenance', models.BooleanField(default=False)),
                ('whitelist', models.JSONField(blank=True, default=list)),
                ('app', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='appsettings', to='api.app')),
                ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.RunPython(settings_for_existing_apps, migrations.RunPython.noop),
    ]
