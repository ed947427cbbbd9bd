# The routes the deployer wants and the router reports on (models/route.py); made by Django 5.2.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('api', '0005_appsettings'),
    ]

    operations = [
        migrations.CreateModel(
            name='AppRoute',
            fields=[
                ('app_id', models.SlugField(max_length=63, primary_key=True, serialize=False)),
                ('upstreams', models.JSONField(blank=True, default=list)),
                ('backups', models.JSONField(blank=True, default=list)),
                ('generation', models.PositiveBigIntegerField(default=1)),
                ('served', models.PositiveBigIntegerField(default=0)),
                ('served_at', models.DateTimeField(blank=True, null=True)),
                ('problem', models.TextField(blank=True)),
                ('updated', models.DateTimeField(auto_now=True)),
            ],
        ),
    ]
