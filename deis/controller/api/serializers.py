"""What the v1 API shows of each object, and what it accepts in a request body."""

from datetime import timezone

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from deis import rules

from . import validators
from .models import App, AppSettings, Build, Certificate, Config, Domain, Key, Release, app_url

User = get_user_model()


def timestamp(value) -> str:
    return value.astimezone(timezone.utc).strftime(api_settings.DATETIME_FORMAT)


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know, so a typo is an error rather than silently ignored."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"detail": "The request body must be a JSON object."})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: [f"Unknown field; accepted: {', '.join(sorted(self.fields)) or 'none'}."] for name in unknown})
        return super().to_internal_value(data)


class OwnerField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="username", read_only=True, **kwargs)


class AppSlugField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="id", read_only=True, **kwargs)


# --- output ---------------------------------------------------------------------------------

class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_superuser", "is_staff",
                  "is_active", "date_joined", "last_login"]
        read_only_fields = fields


class AppSerializer(serializers.ModelSerializer):
    owner = OwnerField()
    url = serializers.CharField(read_only=True)

    class Meta:
        model = App
        fields = ["uuid", "id", "owner", "url", "structure", "created", "updated"]
        read_only_fields = fields

    def to_representation(self, app):
        return app_json(app.uuid, app.id, app.owner.username, app.structure, app.created, app.updated)


# The apps list renders 100 a page straight from database rows: building 200 model objects
# (apps and owners) and running DRF's per-field machinery was most of its cost.
APP_ROW = ("uuid", "id", "owner__username", "structure", "created", "updated")


def app_json(uuid, id, owner, structure, created, updated) -> dict:
    return {"uuid": str(uuid), "id": id, "owner": owner, "url": app_url(id),
            "structure": structure, "created": timestamp(created), "updated": timestamp(updated)}


class BuildSerializer(serializers.ModelSerializer):
    owner = OwnerField()
    app = AppSlugField()

    class Meta:
        model = Build
        fields = ["uuid", "app", "owner", "image", "sha", "procfile", "dockerfile", "failed", "created", "updated"]
        read_only_fields = fields


class BuildDetailSerializer(BuildSerializer):
    """One build with the builder's output (`deis builds:info`)."""

    class Meta(BuildSerializer.Meta):
        fields = [*BuildSerializer.Meta.fields, "log"]
        read_only_fields = fields


class ConfigSerializer(serializers.ModelSerializer):
    owner = OwnerField()
    app = AppSlugField()

    class Meta:
        model = Config
        fields = ["uuid", "app", "owner", "values", "memory", "cpu", "tags", "created", "updated"]
        read_only_fields = fields


class ReleaseSerializer(serializers.ModelSerializer):
    owner = OwnerField()
    app = AppSlugField()
    build = serializers.PrimaryKeyRelatedField(read_only=True)
    config = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Release
        fields = ["uuid", "app", "owner", "version", "summary", "build", "config", "state", "failed",
                  "failure", "created", "updated"]
        read_only_fields = fields


class KeySerializer(serializers.ModelSerializer):
    owner = OwnerField()

    class Meta:
        model = Key
        fields = ["uuid", "id", "owner", "public", "fingerprint", "created", "updated"]
        read_only_fields = fields


class DomainSerializer(serializers.ModelSerializer):
    owner = OwnerField()
    app = AppSlugField()

    class Meta:
        model = Domain
        fields = ["uuid", "app", "owner", "domain", "created", "updated"]
        read_only_fields = fields


class CertificateSerializer(serializers.ModelSerializer):
    """v1's fields, then Workflow v2's: name (= common_name, the v1 identifier), san, domains
    (those it is attached to), fingerprint, starts, issuer, subject. Never the key."""
    owner = OwnerField()
    name = serializers.CharField(source="common_name", read_only=True)
    domains = serializers.SerializerMethodField()

    class Meta:
        model = Certificate
        fields = ["uuid", "owner", "common_name", "expires", "certificate", "created", "updated",
                  "name", "san", "domains", "fingerprint", "starts", "issuer", "subject"]
        read_only_fields = fields

    def get_domains(self, obj) -> list[str]:
        return sorted(a.domain.domain for a in obj.attachments.all())


class AppSettingsSerializer(serializers.ModelSerializer):
    """Workflow's AppSettings fields this platform has: maintenance and whitelist (the allow-list)."""
    owner = OwnerField()
    app = AppSlugField()

    class Meta:
        model = AppSettings
        fields = ["uuid", "app", "owner", "maintenance", "whitelist", "created", "updated"]
        read_only_fields = fields


# --- input ----------------------------------------------------------------------------------

class RegisterInput(StrictSerializer):
    username = serializers.RegexField(validators.USERNAME, max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)
    email = serializers.EmailField(required=False, allow_blank=True)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    # The one-time token `deis-platform up` prints while there is no admin: its holder becomes one.
    admin_token = serializers.CharField(required=False, allow_blank=True, max_length=200)


class LoginInput(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class CancelInput(StrictSerializer):
    username = serializers.CharField(required=False, max_length=150)


class PasswdInput(StrictSerializer):
    password = serializers.CharField(required=False, max_length=4096, trim_whitespace=False)
    new_password = serializers.CharField(max_length=4096, trim_whitespace=False)
    # The v1 client always sends "username", null when it is not given.
    username = serializers.CharField(required=False, allow_null=True, max_length=150)


class TokenInput(StrictSerializer):
    username = serializers.CharField(required=False, max_length=150)
    all = serializers.BooleanField(required=False, default=False)


class UsernameInput(StrictSerializer):
    username = serializers.CharField(max_length=150)


class AppCreateInput(StrictSerializer):
    id = serializers.CharField(required=False, max_length=255)

    def validate_id(self, value):
        return validators.app_name(value)


class AppTransferInput(StrictSerializer):
    owner = serializers.CharField(max_length=150)


class ScaleInput(serializers.DictField):
    """{type: count}; validated in the view against the app's build."""


class RunInput(StrictSerializer):
    command = serializers.CharField(max_length=10000)


class ConfigInput(StrictSerializer):
    values = serializers.JSONField(required=False)
    memory = serializers.JSONField(required=False)
    cpu = serializers.JSONField(required=False)
    tags = serializers.JSONField(required=False)

    checks = {"values": validators.config_values, "memory": validators.memory_limits,
              "cpu": validators.cpu_shares, "tags": validators.tags}

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"detail": "Nothing to change: give values, memory, cpu or tags."})
        changes = {field: self.checks[field](validators.json_map(value, field)) for field, value in attrs.items()}
        if "config" in self.context:  # the app's current config: the merged one must stay within the limits
            validators.config_totals(self.context["config"], changes)
        return changes


class ProcfileField(serializers.JSONField):
    def to_internal_value(self, data):
        data = validators.json_map(super().to_internal_value(data), "procfile")
        for ptype, command in data.items():
            validators.process_type(ptype, None)
            if not isinstance(command, str) or not command.strip():
                raise serializers.ValidationError(f"The command of process type {ptype} must be a non-empty string.")
        return data


class BuildInput(StrictSerializer):
    image = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$", max_length=512,
                                   validators=[validators.image_reference])
    procfile = ProcfileField(required=False)
    sha = serializers.RegexField(r"^[0-9a-f]{0,40}$", required=False, allow_blank=True)
    dockerfile = serializers.CharField(required=False, allow_blank=True, max_length=65536)


class RollbackInput(StrictSerializer):
    version = serializers.IntegerField(required=False, min_value=1)


class KeyInput(StrictSerializer):
    id = serializers.RegexField(validators.KEY_ID, max_length=128)
    public = serializers.CharField(max_length=16384)

    def validate(self, attrs):
        attrs["public"], attrs["fingerprint"] = validators.ssh_public_key(attrs["public"])
        return attrs


class DomainInput(StrictSerializer):
    domain = serializers.CharField(max_length=300)

    def validate_domain(self, value):
        return validators.domain_name(value)


class CertificateInput(StrictSerializer):
    certificate = serializers.CharField(max_length=65536, trim_whitespace=False)
    key = serializers.CharField(max_length=65536, trim_whitespace=False)
    common_name = serializers.CharField(required=False, max_length=253)

    def validate(self, attrs):
        info, attrs["common_name"] = validators.certificate_pair(attrs["certificate"], attrs["key"],
                                                                 attrs.get("common_name"))
        attrs.update(expires=info.expires, starts=info.starts, issuer=info.issuer, subject=info.subject,
                     fingerprint=info.fingerprint, san=list(info.san))
        return attrs


class StrictBooleanField(serializers.BooleanField):
    """true or false (a form may send "true"/"false"); not 1, "yes" or "on", which DRF would take."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data.strip().lower() in ("true", "false"):
            return data.strip().lower() == "true"
        self.fail("invalid")


@extend_schema_field({"type": "array", "items": {"type": "string"}, "maxItems": rules.NETWORKS_MAX})
class AddressesField(serializers.Field):
    """A list of addresses and networks (rules.network_problem), normalised, duplicates dropped."""

    def __init__(self, allow_empty: bool = True, **kwargs):
        self.allow_empty = allow_empty
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError(f"Give a list of addresses: {rules.NETWORK_FORMAT}.")
        if not data and not self.allow_empty:
            raise serializers.ValidationError("Give at least one address.")
        if len(data) > rules.NETWORKS_MAX:
            raise serializers.ValidationError(f"An app may allow at most {rules.NETWORKS_MAX} addresses; "
                                              f"{len(data)} were given.")
        networks = []
        for item in data:
            problem = rules.network_problem(item)
            if problem:
                raise serializers.ValidationError(problem)
            network = rules.normal_network(item)
            if network not in networks:
                networks.append(network)
        return networks

    def to_representation(self, value):
        return list(value)


class AppSettingsInput(StrictSerializer):
    """Workflow's POST /apps/<app>/settings/: `maintenance`, and `whitelist` (replaces the allow-list)."""
    maintenance = StrictBooleanField(required=False)
    whitelist = AddressesField(required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"detail": "Nothing to change: give maintenance (true or false) "
                                                         "or whitelist."})
        return attrs


class WhitelistInput(StrictSerializer):
    addresses = AddressesField(allow_empty=False)


class CertificateDomainInput(StrictSerializer):
    domain = serializers.CharField(max_length=300)


class PushHookInput(StrictSerializer):
    sha = serializers.RegexField(r"^[0-9a-f]{7,40}$")
    fingerprint = serializers.CharField(max_length=128)
    receive_user = serializers.CharField(max_length=150)
    receive_repo = serializers.CharField(max_length=128)
    ssh_connection = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    ssh_original_command = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class ConfigHookInput(StrictSerializer):
    receive_user = serializers.CharField(max_length=150)
    receive_repo = serializers.CharField(max_length=128)


class RolloutHookInput(ConfigHookInput):
    version = serializers.IntegerField(min_value=1, max_value=10 ** 9)


BUILD_LOG_CHARS = 256 * 1024  # the builder sends the newest part of a longer log


class BuildHookInput(StrictSerializer):
    receive_user = serializers.CharField(max_length=150)
    receive_repo = serializers.CharField(max_length=128)
    # `failed: true` records a build that failed (its log, no image) and makes no release.
    image = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$", max_length=512, required=False,
                                   allow_blank=True, default="", validators=[validators.image_reference])
    log = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                max_length=BUILD_LOG_CHARS, default="")
    failed = serializers.BooleanField(required=False, default=False)
    sha = serializers.RegexField(r"^[0-9a-f]{0,40}$", required=False, allow_blank=True, default="")
    procfile = ProcfileField(required=False)
    dockerfile = serializers.CharField(required=False, allow_blank=True, max_length=65536, default="")

    def validate(self, data):
        if not data.get("failed") and not data.get("image"):
            raise serializers.ValidationError({"image": ["A build that did not fail needs its image."]})
        return data
