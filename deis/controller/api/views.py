"""The Deis v1 API views. Each view checks who may act, validates with a serializer, and leaves
release-making to `releases` and running to the scheduler."""

from coolname import generate_slug
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

import os
import time
from pathlib import Path

from deis import API_VERSION, images
from deis.lazy import lazy_module
from deis import rules
from deis.scheduler import get_scheduler

from . import accounts, jobs, releases, rollouts, runtime, serializers, validators
from .exceptions import Conflict, TooMany
from .models import App, AppSettings, Build, Certificate, CertificateDomain, Domain, Job, Key, Push, Rollout, lock_app
from .permissions import BuilderKeyAuthentication, IsAdmin, IsBuilder, deny

tls = lazy_module("deis.router.tls")  # cryptography: only for certificates

User = get_user_model()


def healthz(request):
    return HttpResponse("OK", content_type="text/plain")


def validated(serializer_class, request, **kwargs):
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def queued(release=None, generation: int = 0) -> dict:
    """The headers of an answer to a change: the release made, and the rollout generation a client
    waits for (`GET /v1/apps/<app>/rollout` until `observed` reaches it); none without a runtime."""
    headers = {"Deis-Release": str(release.version)} if release is not None else {}
    if generation:
        headers["Deis-Rollout"] = str(generation)
    return headers


def user_named(username: str):
    try:
        return User.objects.get(username=username)
    except User.DoesNotExist:
        raise NotFound(f"No user named '{username}'.")


def new_token(user) -> str:
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user).key


def login_token(user) -> str:
    """The user's token (shared by their sessions, as in v1), a new one when it has expired."""
    with transaction.atomic():
        token, made = Token.objects.get_or_create(user=user)
        if not made and accounts.token_expired(token.created, settings.TOKEN_TTL, timezone.now()):
            return new_token(user)
        return token.key


def checked_password(field: str, password: str, user) -> None:
    """400 with the password validators' messages (AUTH_PASSWORD_VALIDATORS) under `field`."""
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationError({field: list(exc.messages)})


def login_throttle() -> accounts.LoginThrottle:
    """Failed-login counters shared by every worker process: files in DATA_DIR/cache (0700)."""
    from django.core.cache import caches

    folder = Path(settings.CACHES["accounts"]["LOCATION"])
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return accounts.LoginThrottle(caches["accounts"], settings.LOGIN_FAILURES, settings.LOGIN_WINDOW,
                                  folder / "login.lock")


def login_keys(request, username: str) -> list[str]:
    # The socket's address: X-Forwarded-For is whatever the client says (the router does not
    # proxy the controller).
    return [accounts.user_key(username), accounts.address_key(request.META.get("REMOTE_ADDR", ""))]


def refuse_if_throttled(throttle: accounts.LoginThrottle, keys: list[str]) -> None:
    wait = throttle.retry_after(keys)
    if wait:
        # Which counter tripped is not said: that would tell whether a username is being tried.
        exc = TooMany(f"Too many failed logins for this account or from this address; try again in "
                      f"{wait} seconds.")
        exc.wait = wait  # DRF's handler turns it into Retry-After
        raise exc


class RootView(APIView):
    """`GET /v1/` answers 401 without a token: clients use it to recognise a controller."""

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response({"detail": f"Deis controller, API {API_VERSION}"})


# --- auth and users -------------------------------------------------------------------------

class RegisterView(generics.GenericAPIView):
    permission_classes = [AllowAny]
    serializer_class = serializers.RegisterInput

    @extend_schema(responses={201: serializers.UserSerializer})
    def post(self, request):
        # Registering never makes an admin by itself: only the one-time admin token that
        # `deis-platform up` prints (or `deis-platform admin USERNAME`) does.
        data = validated(serializers.RegisterInput, request)
        admin_token = data.pop("admin_token", "")
        mode = settings.REGISTRATION_MODE
        if not admin_token and mode == "disabled":
            raise PermissionDenied("Registration is disabled on this platform; ask an administrator.")
        if not admin_token and mode == "admin_only" and not request.user.is_superuser:
            raise PermissionDenied("Only administrators may register users on this platform.")
        fields = {"username": data["username"], "email": data.get("email", ""),
                  "first_name": data.get("first_name", ""), "last_name": data.get("last_name", "")}
        if User.objects.filter(username=data["username"]).exists():
            raise ValidationError({"username": ["A user with that username already exists."]})
        checked_password("password", data["password"], User(**fields))
        claim = None
        if admin_token:
            claim = accounts.claim_admin_token(Path(settings.ADMIN_TOKEN_FILE), admin_token)
            if claim is None:
                raise PermissionDenied("The admin token is wrong or has been used already.")
        try:
            with transaction.atomic():
                if User.objects.filter(username=data["username"]).exists():
                    raise ValidationError({"username": ["A user with that username already exists."]})
                user = User.objects.create_user(password=data["password"], is_superuser=claim is not None,
                                                is_staff=claim is not None, **fields)
        except BaseException:
            if claim is not None:
                claim.release()
            raise
        if claim is not None:
            claim.commit()
        return Response(serializers.UserSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(generics.GenericAPIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    serializer_class = serializers.LoginInput

    @extend_schema(responses={200: dict})
    def post(self, request):
        data = validated(serializers.LoginInput, request)
        throttle, keys = login_throttle(), login_keys(request, data["username"])
        refuse_if_throttled(throttle, keys)  # even with the right password
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if user is None:
            throttle.failed(keys)
            # 401, though this view takes no token (a stale one must not block logging in).
            return Response({"detail": "The username or password is wrong."},
                            status=status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Token"})
        throttle.reset(keys[0])  # the address keeps its count: its own account must not clear it
        return Response({"token": login_token(user)})


class CancelView(generics.GenericAPIView):
    serializer_class = serializers.CancelInput

    def delete(self, request):
        data = validated(serializers.CancelInput, request)
        user = request.user
        if data.get("username") and data["username"] != user.username:
            if not user.is_superuser:
                raise PermissionDenied("Only administrators may cancel other users' accounts.")
            user = user_named(data["username"])
        owned = list(App.objects.filter(owner=user).values_list("id", flat=True))
        if owned:
            raise Conflict(f"{user.username} still owns apps ({', '.join(owned)}): destroy or "
                           "transfer them first.")
        user.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswdView(generics.GenericAPIView):
    serializer_class = serializers.PasswdInput

    @extend_schema(responses={200: dict})
    def post(self, request):
        data = validated(serializers.PasswdInput, request)
        user = request.user
        if data.get("username") and data["username"] != user.username:
            if not user.is_superuser:
                raise PermissionDenied("Only administrators may change other users' passwords.")
            user = user_named(data["username"])
        else:
            # Guessing the current password is throttled like logging in.
            throttle, keys = login_throttle(), login_keys(request, user.username)
            refuse_if_throttled(throttle, keys)
            if not user.check_password(data.get("password") or ""):
                throttle.failed(keys)
                raise ValidationError({"password": ["The current password is wrong."]})
        checked_password("new_password", data["new_password"], user)
        with transaction.atomic():
            user.set_password(data["new_password"])
            user.save()
            # Every session of the user ends; the caller changing their own gets a new token.
            Token.objects.filter(user=user).delete()
            body = {"detail": "Password changed."}
            if user.pk == request.user.pk:
                body["token"] = Token.objects.create(user=user).key
        return Response(body)


class TokensView(generics.GenericAPIView):
    serializer_class = serializers.TokenInput

    @extend_schema(responses={200: dict})
    def post(self, request):
        data = validated(serializers.TokenInput, request)
        if (data.get("all") or data.get("username")) and not request.user.is_superuser:
            raise PermissionDenied("Only administrators may regenerate other users' tokens.")
        with transaction.atomic():
            if data.get("all"):
                for user in User.objects.exclude(pk=request.user.pk):
                    new_token(user)
                return Response({"token": new_token(request.user)})
            user = user_named(data["username"]) if data.get("username") else request.user
            return Response({"token": new_token(user)})


class UsersView(generics.ListAPIView):
    permission_classes = [IsAdmin]
    serializer_class = serializers.UserSerializer
    queryset = User.objects.order_by("username")


class AdminPermsView(generics.GenericAPIView):
    permission_classes = [IsAdmin]
    serializer_class = serializers.UsernameInput

    @extend_schema(responses={200: serializers.UserSerializer(many=True)})
    def get(self, request):
        admins = User.objects.filter(is_superuser=True).order_by("username")
        page = self.paginate_queryset(admins)
        return self.get_paginated_response(
            [{"username": u.username, "is_superuser": True} for u in page])

    def post(self, request):
        user = user_named(validated(serializers.UsernameInput, request)["username"])
        user.is_superuser = user.is_staff = True
        user.save()
        return Response({"username": user.username, "is_superuser": True}, status=status.HTTP_201_CREATED)


class AdminPermDetailView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses={204: None})
    def delete(self, request, username):
        user = user_named(username)
        if not user.is_superuser:
            raise NotFound(f"{username} is not an administrator.")
        if User.objects.filter(is_superuser=True).count() == 1:
            raise Conflict("This is the last administrator; make another user an admin first.")
        user.is_superuser = user.is_staff = False
        user.save()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- apps -----------------------------------------------------------------------------------

def app_for(request, app_id: str, action: str = "use", manage: bool = False) -> App:
    """The app, if the caller may act on it: 404 for no such app, 403 naming its owner otherwise."""
    app = App.objects.select_related("owner").filter(id=app_id).first()
    if app is None:
        raise NotFound(f"No app named '{app_id}'.")
    allowed = app.can_manage(request.user) if manage else app.can_use(request.user)
    if not allowed:
        raise deny(request.user, action, app)
    return app


def visible_apps(user):
    """Owned or shared apps; a subquery rather than a JOIN + DISTINCT over every app the user has."""
    if user.is_superuser:
        return App.objects.all()
    shared = App.collaborators.through.objects.filter(user=user).values("app_id")
    return App.objects.filter(Q(owner=user) | Q(uuid__in=shared))


class AppsView(generics.ListAPIView):
    serializer_class = serializers.AppSerializer

    def get_queryset(self):
        return visible_apps(self.request.user).order_by("id").values_list(*serializers.APP_ROW)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([serializers.app_json(*row) for row in page])

    @extend_schema(request=serializers.AppCreateInput, responses={201: serializers.AppSerializer})
    def post(self, request):
        data = validated(serializers.AppCreateInput, request)
        app_id = data.get("id")
        if app_id:
            if App.objects.filter(id=app_id).exists():
                raise Conflict(f"An app named '{app_id}' already exists; choose another name.")
            if rollouts.tearing_down(app_id):
                raise Conflict(f"An app named '{app_id}' was just destroyed and its processes are being "
                               "removed; try again in a moment.")
        else:
            for _ in range(100):
                app_id = generate_slug(2)
                if len(app_id) <= 63 and not App.objects.filter(id=app_id).exists() \
                        and not rollouts.tearing_down(app_id):
                    break
        try:
            app = releases.create_app(app_id, request.user)
        except IntegrityError:
            raise Conflict(f"An app named '{app_id}' already exists; choose another name.")
        runtime.refresh_routes()
        return Response(serializers.AppSerializer(app).data, status=status.HTTP_201_CREATED)


class AppDetailView(generics.GenericAPIView):
    serializer_class = serializers.AppSerializer

    def get(self, request, id):
        return Response(serializers.AppSerializer(app_for(request, id, "view")).data)

    @extend_schema(request=serializers.AppTransferInput, responses={200: serializers.AppSerializer})
    def post(self, request, id):
        app = app_for(request, id, "transfer", manage=True)
        new_owner = user_named(validated(serializers.AppTransferInput, request)["owner"])
        app.owner = new_owner
        app.save()
        app.collaborators.remove(new_owner)
        return Response(serializers.AppSerializer(app).data)

    def delete(self, request, id):
        app = app_for(request, id, "destroy", manage=True)
        runtime.destroy(app)
        return Response(status=status.HTTP_204_NO_CONTENT)


SCALE_COUNT_MAX = 10 ** 6  # beyond any quota: a larger count is a mistake (400), not a quota matter


def _processes(structure) -> int:
    return sum(n for n in (structure or {}).values() if isinstance(n, int) and not isinstance(n, bool))


def check_process_quotas(app: App, before: dict, after: dict) -> None:
    """403 when `after` runs more processes than the app (DEIS_MAX_PROCESSES_PER_APP) or its owner,
    over all the apps they own (DEIS_MAX_PROCESSES_PER_USER), may run. A change that runs no more
    than before always passes (scaling down after a quota was lowered). Called under the app's lock,
    with the owner's row locked too, so two scales of one owner's apps cannot both pass."""
    total, old_total = _processes(after), _processes(before)
    if total <= old_total:
        return
    per_app = settings.MAX_PROCESSES_PER_APP
    if total > per_app:
        raise PermissionDenied(f"Cannot scale {app.id} to {total} processes: an app may run at most {per_app} "
                               f"(all process types together; DEIS_MAX_PROCESSES_PER_APP).")
    User.objects.select_for_update().filter(pk=app.owner_id).values_list("pk", flat=True).first()
    others = App.objects.filter(owner_id=app.owner_id).exclude(pk=app.pk).values_list("structure", flat=True)
    owned = total + sum(_processes(structure) for structure in others)
    per_user = settings.MAX_PROCESSES_PER_USER
    if owned > per_user:
        raise PermissionDenied(f"Cannot scale {app.id} to {total} processes: its owner's apps would run {owned}, "
                               f"and one user's apps may run at most {per_user} (DEIS_MAX_PROCESSES_PER_USER).")


class ScaleView(APIView):
    @extend_schema(request=dict, responses={204: None})
    def post(self, request, id):
        app = app_for(request, id, "scale")
        if not isinstance(request.data, dict) or not request.data:
            raise ValidationError({"detail": "Give process counts, like {\"web\": 2}."})
        release = app.current_release()
        if release is None or release.build is None:
            raise ValidationError({"detail": f"{app.id} has no build yet: deploy with git push or deis pull first."})
        known = release.build.process_types()
        changes = {}
        for ptype, count in request.data.items():
            validators.process_type(ptype)
            if ptype not in known:
                raise ValidationError({"detail": f"Unknown process type '{ptype}'; {app.id} has {', '.join(sorted(known))}."})
            number = rules.whole_number(count, SCALE_COUNT_MAX)
            if number is None:
                raise ValidationError({ptype: [f"The count must be a whole number from 0 to "
                                               f"{settings.MAX_PROCESSES_PER_APP}, like 2; got {str(count)[:40]!r}."]})
            changes[ptype] = number
        with releases.write_transaction():
            app = lock_app(app)
            before = dict(app.structure) or runtime.default_structure(releases.release_spec(release))
            after = {**before, **changes}
            check_process_quotas(app, before, after)
            runtime.require_runtime("scaled")
            app.structure = after
            app.save(update_fields=["structure", "updated"])
        generation = runtime.queue(app.id, revert_structure=before)
        runtime.event(app.id, f"{request.user.username} scaled {runtime.structure_text(app.structure)}")
        return Response(status=status.HTTP_204_NO_CONTENT, headers=queued(generation=generation))


class LogsView(APIView):
    @extend_schema(parameters=[OpenApiParameter("log_lines", int)], responses={200: str, 204: None})
    def get(self, request, id):
        app = app_for(request, id, "read the logs of")
        raw = request.query_params.get("log_lines", str(settings.DEFAULT_LOG_LINES))
        if not rules.whole_number(raw, 10000):  # ASCII digits: "²".isdigit() is true, and int() refuses it
            raise ValidationError({"log_lines": ["A whole number from 1 to 10000."]})
        if not get_scheduler().available:
            get_scheduler().logs(app.id, int(raw))  # says why there are no logs
        lines = runtime.log_store().tail(app.id, int(raw))
        if not lines:
            return Response(status=status.HTTP_204_NO_CONTENT)
        # The v1 client reads the body with .json(): a JSON string of newline-ended lines.
        return Response("".join(line + "\n" for line in lines), content_type="text/plain")


class RunView(generics.GenericAPIView):
    serializer_class = serializers.RunInput

    @extend_schema(responses={200: {"type": "array", "items": {}}})
    def post(self, request, id):
        app = app_for(request, id, "run commands in")
        command = validated(serializers.RunInput, request)["command"]
        release = app.current_release()
        if release is None or release.build is None:
            raise ValidationError({"detail": f"{app.id} has no build yet: deploy with git push or deis pull first."})
        runtime.require_runtime("run")
        try:
            job = jobs.start(app, request.user, release, command, waited=True)
        except jobs.JobLimit as exc:
            raise TooMany(str(exc))
        # The v1 client reads the output from this answer, so this request waits (see jobs).
        job = jobs.wait(job, timeout=float(settings.RELEASE_PHASE_TIMEOUT) * 4)
        text, _ = jobs.output_from(job, 0)
        return Response([job.exit_code if job.exit_code is not None else 1, text])


def _job_release(app):
    release = app.current_release()
    if release is None or release.build is None:
        raise ValidationError({"detail": f"{app.id} has no build yet: deploy with git push or deis pull first."})
    return release


class JobsView(generics.GenericAPIView):
    """`deis run`: a one-off queued at once (201); its output is read with `GET jobs/<uuid>?offset=`."""

    serializer_class = serializers.RunInput

    @extend_schema(responses={200: dict})
    def get(self, request, id):
        app = app_for(request, id, "view the one-offs of")
        recent = app.jobs.select_related("owner", "app").order_by("-created")[:20]
        return Response({"count": len(recent), "next": None, "previous": None,
                         "results": [dict(jobs.as_json(j), output="") for j in recent]})

    @extend_schema(responses={201: dict})
    def post(self, request, id):
        app = app_for(request, id, "run commands in")
        command = validated(serializers.RunInput, request)["command"]
        release = _job_release(app)
        runtime.require_runtime("run")
        try:
            job = jobs.start(app, request.user, release, command)
        except jobs.JobLimit as exc:
            raise TooMany(str(exc))
        return Response(jobs.as_json(job), status=status.HTTP_201_CREATED)


class JobDetailView(APIView):
    @extend_schema(parameters=[OpenApiParameter("offset", int)], responses={200: dict})
    def get(self, request, id, uuid):
        app = app_for(request, id, "view the one-offs of")
        job = Job.objects.select_related("owner", "app").filter(app=app, uuid=uuid).first()
        if job is None:
            raise NotFound(f"No one-off {uuid} in {app.id}.")
        raw = request.query_params.get("offset", "0")
        if rules.whole_number(raw, 10 ** 15) is None:
            raise ValidationError({"offset": ["A whole number of bytes."]})
        return Response(jobs.as_json(job, int(raw)))


class RolloutView(APIView):
    """How far the app's newest change got: `generation` (bumped by each change), `observed` (the
    generation the last finished rollout was for), `phase`, `error`, `steps`."""

    @extend_schema(responses={200: dict})
    def get(self, request, id):
        app = app_for(request, id, "view the rollouts of")
        return Response(rollouts.as_json(Rollout.objects.filter(app_id=app.id).first(), app.id))


def _filtered_state(app, proc_type, num):
    processes = get_scheduler().state(app.id)
    if proc_type:
        processes = [p for p in processes if p["type"] == proc_type]
    if num is not None:
        processes = [p for p in processes if str(p["num"]) == str(num)]
    return processes


class ContainersView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, id, type=None, num=None):
        app = app_for(request, id, "list the processes of")
        processes = _filtered_state(app, type, num)
        return Response({"count": len(processes), "next": None, "previous": None, "results": processes})


class ContainersRestartView(APIView):
    @extend_schema(request=None, responses={200: {"type": "array", "items": {"type": "object"}}})
    def post(self, request, id, type=None, num=None):
        app = app_for(request, id, "restart")
        if type:
            validators.process_type(type)
        runtime.require_runtime("restarted")
        processes = _filtered_state(app, type, num)
        if not processes:
            what = f"{type}.{num}" if num else (f"processes of type {type}" if type else "processes")
            raise NotFound(f"{app.id} has no {what} to restart; see `deis ps`.")
        restart = {"type": type or None, "num": int(num) if num else None, "before": time.time()}
        generation = runtime.queue(app.id, restart=restart)
        who = f"{type}.{num}" if num else (type or "all processes")
        runtime.event(app.id, f"{request.user.username} restarted {who}")
        return Response(processes, headers=queued(generation=generation))


class AppPermsView(generics.GenericAPIView):
    serializer_class = serializers.UsernameInput

    @extend_schema(responses={200: dict})
    def get(self, request, id):
        app = app_for(request, id, "view the sharing of")
        return Response({"users": sorted(app.collaborators.values_list("username", flat=True))})

    def post(self, request, id):
        app = app_for(request, id, "share", manage=True)
        user = user_named(validated(serializers.UsernameInput, request)["username"])
        if user == app.owner:
            raise ValidationError({"username": [f"{user.username} owns {app.id} already."]})
        if app.collaborators.filter(pk=user.pk).exists():
            raise Conflict(f"{user.username} is already a collaborator on {app.id}.")
        app.collaborators.add(user)
        return Response({"username": user.username}, status=status.HTTP_201_CREATED)


class AppPermDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, id, username):
        app = app_for(request, id, "change the sharing of", manage=True)
        user = user_named(username)
        if not app.collaborators.filter(pk=user.pk).exists():
            raise NotFound(f"{username} is not a collaborator on {app.id}.")
        app.collaborators.remove(user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- config, builds, releases ---------------------------------------------------------------

class ConfigView(generics.GenericAPIView):
    serializer_class = serializers.ConfigInput

    @extend_schema(responses={200: serializers.ConfigSerializer})
    def get(self, request, id):
        app = app_for(request, id, "view the config of")
        return Response(serializers.ConfigSerializer(app.current_release().config).data)

    @extend_schema(responses={201: serializers.ConfigSerializer})
    def post(self, request, id):
        app = app_for(request, id, "configure")
        current = app.current_release()
        changes = validated(serializers.ConfigInput, request, context={"config": current and current.config})
        config, release = releases.change_config(app, request.user, changes)
        return Response(serializers.ConfigSerializer(config).data, status=status.HTTP_201_CREATED,
                        headers=queued(release, runtime.queue(app.id)))


class BuildsView(generics.ListAPIView):
    serializer_class = serializers.BuildSerializer

    def get_queryset(self):
        app = app_for(self.request, self.kwargs["id"], "view the builds of")
        return app.builds.select_related("owner", "app").order_by("-created")

    @extend_schema(request=serializers.BuildInput, responses={201: serializers.BuildSerializer})
    def post(self, request, id):
        app = app_for(request, id, "deploy")
        data = validated(serializers.BuildInput, request)
        problem = images.image_problem(data["image"], app.id)
        if problem:
            raise ValidationError({"image": [problem]})
        build, release = releases.new_build(app, request.user, **data)
        return Response(serializers.BuildSerializer(build).data, status=status.HTTP_201_CREATED,
                        headers=queued(release, runtime.queue(app.id)))


class BuildDetailView(APIView):
    @extend_schema(responses={200: serializers.BuildDetailSerializer})
    def get(self, request, id, uuid):
        app = app_for(request, id, "view the builds of")
        build = Build.objects.filter(app=app, uuid=uuid).first()
        if build is None:
            raise NotFound(f"No build {uuid} in {app.id}.")
        return Response(serializers.BuildDetailSerializer(build).data)


class ReleasesView(generics.ListAPIView):
    serializer_class = serializers.ReleaseSerializer

    def get_queryset(self):
        app = app_for(self.request, self.kwargs["id"], "view the releases of")
        return app.releases.select_related("owner", "app").order_by("-version")


class ReleaseDetailView(APIView):
    @extend_schema(responses={200: serializers.ReleaseSerializer})
    def get(self, request, id, version):
        app = app_for(request, id, "view the releases of")
        release = app.releases.filter(version=int(version)).first()
        if release is None:
            raise NotFound(f"{app.id} has no release v{version}.")
        return Response(serializers.ReleaseSerializer(release).data)


class RollbackView(generics.GenericAPIView):
    serializer_class = serializers.RollbackInput

    @extend_schema(responses={201: dict})
    def post(self, request, id):
        app = app_for(request, id, "roll back")
        data = validated(serializers.RollbackInput, request)
        try:
            release = releases.rollback(app, request.user, data.get("version"))
        except releases.RollbackError as exc:
            raise ValidationError({"detail": str(exc)})
        return Response({"version": release.version}, status=status.HTTP_201_CREATED,
                        headers=queued(release, runtime.queue(app.id)))


# --- domains, certificates, keys ------------------------------------------------------------

class DomainsView(generics.ListAPIView):
    serializer_class = serializers.DomainSerializer

    def get_queryset(self):
        app = app_for(self.request, self.kwargs["id"], "view the domains of")
        return app.domains.select_related("owner", "app").order_by("domain")

    @extend_schema(request=serializers.DomainInput, responses={201: serializers.DomainSerializer})
    def post(self, request, id):
        app = app_for(request, id, "add domains to")
        domain = validated(serializers.DomainInput, request)["domain"]
        if Domain.objects.filter(domain=domain).exists():
            raise Conflict(f"{domain} is already in use by an app.")
        obj = Domain.objects.create(app=app, owner=request.user, domain=domain)
        runtime.refresh_routes()
        return Response(serializers.DomainSerializer(obj).data, status=status.HTTP_201_CREATED)


class DomainDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, id, domain):
        app = app_for(request, id, "remove domains from")
        obj = app.domains.filter(domain=domain.lower()).first()
        if obj is None:
            raise NotFound(f"{domain} is not a domain of {app.id}.")
        obj.delete()
        runtime.refresh_routes()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- maintenance mode and the allow-list (Workflow v2's /settings/ and /whitelist/) -----------

def change_settings(request, app: App, change) -> AppSettings:
    """Under the app's lock: `change(settings)` edits the app's settings and returns what it did (a
    line for the app's log), None when nothing changes, or raises to refuse. A change is saved and
    put into effect at once: every route is refreshed (runtime.route_for reads the settings)."""
    with releases.write_transaction():
        lock_app(app)
        row = AppSettings.of(app)
        did = change(row)
        if did:
            row.owner = request.user
            row.save()
    if did:
        runtime.refresh_routes()
        runtime.event(app.id, f"{request.user.username} {did}")
    return row


class AppSettingsView(generics.GenericAPIView):
    """`maintenance`: every request to the app is answered 503 with the maintenance page;
    `whitelist`: the networks whose clients may use it (others get 403), empty for everybody."""

    serializer_class = serializers.AppSettingsInput

    @extend_schema(responses={200: serializers.AppSettingsSerializer})
    def get(self, request, id):
        app = app_for(request, id, "view the settings of")
        return Response(serializers.AppSettingsSerializer(AppSettings.of(app)).data)

    @extend_schema(responses={201: serializers.AppSettingsSerializer})
    def post(self, request, id):
        app = app_for(request, id, "change the settings of")
        data = validated(serializers.AppSettingsInput, request)

        def change(row):
            did = []
            if "maintenance" in data and data["maintenance"] != row.maintenance:
                row.maintenance = data["maintenance"]
                did.append(f"turned maintenance mode {'on' if row.maintenance else 'off'}")
            if "whitelist" in data and data["whitelist"] != row.whitelist:
                row.whitelist = data["whitelist"]
                did.append(f"set the allow-list to {', '.join(row.whitelist)}" if row.whitelist
                           else "emptied the allow-list (everybody may use it)")
            return " and ".join(did)

        row = change_settings(request, app, change)
        return Response(serializers.AppSettingsSerializer(row).data, status=status.HTTP_201_CREATED)


class WhitelistView(generics.GenericAPIView):
    """The allow-list as Workflow v2 has it: `{"addresses": [...]}` to list, add (POST) and remove
    (DELETE). Addresses are normalised (10.1.2.3/8 is 10.0.0.0/8, 203.0.113.7 is 203.0.113.7/32);
    one already there is not added twice; removing one that is not there removes nothing (404)."""

    serializer_class = serializers.WhitelistInput

    @extend_schema(responses={200: dict})
    def get(self, request, id):
        app = app_for(request, id, "view the allow-list of")
        return Response({"addresses": AppSettings.of(app).whitelist})

    def change(self, request, id, edit) -> AppSettings:
        """The body's addresses, given to `edit(app, settings, addresses)` through change_settings."""
        app = app_for(request, id, "change the allow-list of")
        addresses = validated(serializers.WhitelistInput, request)["addresses"]
        return change_settings(request, app, lambda row: edit(app, row, addresses))

    @staticmethod
    def add(app: App, row: AppSettings, addresses: list[str]) -> str | None:
        new = [a for a in addresses if a not in row.whitelist]
        if len(row.whitelist) + len(new) > rules.NETWORKS_MAX:
            raise ValidationError({"addresses": [
                f"An app may allow at most {rules.NETWORKS_MAX} addresses: {app.id} allows "
                f"{len(row.whitelist)}, and this would add {len(new)}."]})
        row.whitelist = [*row.whitelist, *new]
        return f"allowed {', '.join(new)}" if new else None

    @staticmethod
    def remove(app: App, row: AppSettings, addresses: list[str]) -> str:
        missing = [a for a in addresses if a not in row.whitelist]
        if missing:
            raise NotFound(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in the "
                           f"allow-list of {app.id}.")
        row.whitelist = [a for a in row.whitelist if a not in addresses]
        return f"removed {', '.join(addresses)} from the allow-list" + \
            ("" if row.whitelist else " (everybody may use it now)")

    @extend_schema(responses={201: dict})
    def post(self, request, id):
        row = self.change(request, id, self.add)
        return Response({"addresses": row.whitelist}, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def delete(self, request, id):
        self.change(request, id, self.remove)
        return Response(status=status.HTTP_204_NO_CONTENT)


def visible_certs(user):
    """A user's own certificates; an admin's: everyone's."""
    certs = Certificate.objects.all() if user.is_superuser else Certificate.objects.filter(owner=user)
    return certs.select_related("owner").prefetch_related("attachments__domain")


def cert_named(request, common_name: str) -> Certificate:
    """The caller's certificate of that name; for an admin, else the only one of that name (or the
    one of `?owner=<username>`): names are unique per owner, not across users."""
    name = common_name.lower()
    cert = visible_certs(request.user).filter(owner=request.user, common_name=name).first()
    if cert is None and request.user.is_superuser:
        found = visible_certs(request.user).filter(common_name=name)
        if request.query_params.get("owner"):
            found = found.filter(owner__username=request.query_params["owner"])
        found = list(found[:2])
        if len(found) > 1:
            raise Conflict(f"Several users have a certificate named {name}: add ?owner=<username>.")
        cert = found[0] if found else None
    if cert is None:
        raise NotFound(f"No certificate for {common_name}.")
    return cert


class CertsView(generics.ListAPIView):
    """Certificates are owned by their uploader and served only for the domains they are attached
    to: on upload, every domain it covers of the uploader's (owned or shared) apps that has no
    certificate yet (see models/certificate.py for the whole rule)."""
    serializer_class = serializers.CertificateSerializer

    def get_queryset(self):
        return visible_certs(self.request.user).order_by("common_name", "owner__username")

    @extend_schema(request=serializers.CertificateInput, responses={201: serializers.CertificateSerializer})
    def post(self, request):
        data = validated(serializers.CertificateInput, request)
        exists = Conflict(f"A certificate for {data['common_name']} exists already; remove it first.")
        if Certificate.objects.filter(owner=request.user, common_name=data["common_name"]).exists():
            raise exists
        try:
            with releases.write_transaction():
                cert = Certificate.objects.create(owner=request.user, **data)
                cert.attach_covered()
        except IntegrityError:
            raise exists
        runtime.refresh_routes()
        return Response(serializers.CertificateSerializer(visible_certs(request.user).get(pk=cert.pk)).data,
                        status=status.HTTP_201_CREATED)


class CertDetailView(APIView):
    @extend_schema(responses={200: serializers.CertificateSerializer})
    def get(self, request, common_name):
        return Response(serializers.CertificateSerializer(cert_named(request, common_name)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, common_name):
        cert_named(request, common_name).delete()
        runtime.refresh_routes()
        return Response(status=status.HTTP_204_NO_CONTENT)


class CertDomainsView(APIView):
    """Workflow v2's POST /certs/<name>/domain/ {"domain"}: serve the certificate for one more
    domain, of an app both the caller and the certificate's owner may use, that it covers and that
    has no certificate yet."""

    @extend_schema(request=serializers.CertificateDomainInput, responses={201: serializers.CertificateSerializer})
    def post(self, request, common_name):
        cert = cert_named(request, common_name)
        name = validated(serializers.CertificateDomainInput, request)["domain"].strip().lower().rstrip(".")
        domain = Domain.objects.select_related("app").filter(domain=name).first()
        if domain is None:
            raise NotFound(f"No app has the domain {name}.")
        if not domain.app.can_use(request.user) or not cert.usable_apps().filter(pk=domain.app_id).exists():
            raise PermissionDenied(f"{name} is not a domain of an app you (and {cert.owner.username}, the "
                                   "certificate's owner) own or share.")
        why = tls.problem(cert.certificate, cert.key)
        if why:
            raise ValidationError({"certificate": [f"This certificate cannot be served: {why} Remove it."]})
        if cert.expires <= timezone.now():
            raise ValidationError({"certificate": [f"The certificate expired on {cert.expires:%Y-%m-%d %H:%M} UTC."]})
        if not cert.covers(name):
            raise ValidationError({"domain": [f"The certificate is not for {name} (it is for "
                                              f"{', '.join(cert.info().names)})."]})
        taken = Conflict(f"{name} has a certificate attached already; detach it first.")
        if CertificateDomain.objects.filter(domain=domain).exists():
            raise taken
        try:
            with releases.write_transaction():
                CertificateDomain.objects.create(certificate=cert, domain=domain)
        except IntegrityError:
            raise taken
        runtime.refresh_routes()
        return Response(serializers.CertificateSerializer(visible_certs(request.user).get(pk=cert.pk)).data,
                        status=status.HTTP_201_CREATED)


class CertDomainDetailView(APIView):
    """Workflow v2's DELETE /certs/<name>/domain/<domain>: stop serving it for that domain."""

    @extend_schema(responses={204: None})
    def delete(self, request, common_name, domain):
        cert = cert_named(request, common_name)
        attachment = cert.attachments.filter(domain__domain=domain.lower().rstrip(".")).first()
        if attachment is None:
            raise NotFound(f"{cert.common_name} is not attached to {domain}.")
        attachment.delete()
        runtime.refresh_routes()
        return Response(status=status.HTTP_204_NO_CONTENT)


class KeysView(generics.ListAPIView):
    serializer_class = serializers.KeySerializer

    def get_queryset(self):
        return Key.objects.filter(owner=self.request.user).select_related("owner").order_by("id")

    @extend_schema(request=serializers.KeyInput, responses={201: serializers.KeySerializer})
    def post(self, request):
        data = validated(serializers.KeyInput, request)
        if Key.objects.filter(fingerprint=data["fingerprint"]).exists():
            raise Conflict(f"This key ({data['fingerprint']}) is registered already.")
        if Key.objects.filter(owner=request.user, id=data["id"]).exists():
            raise Conflict(f"You have a key named {data['id']} already.")
        key = Key.objects.create(owner=request.user, **data)
        return Response(serializers.KeySerializer(key).data, status=status.HTTP_201_CREATED)


class KeyDetailView(APIView):
    def _key(self, request, key_id):
        key = Key.objects.filter(owner=request.user, id=key_id).first()
        if key is None:
            raise NotFound(f"You have no key named {key_id}.")
        return key

    @extend_schema(responses={200: serializers.KeySerializer})
    def get(self, request, key_id):
        return Response(serializers.KeySerializer(self._key(request, key_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, key_id):
        self._key(request, key_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- builder hooks --------------------------------------------------------------------------

class HookView(generics.GenericAPIView):
    authentication_classes = [BuilderKeyAuthentication]
    permission_classes = [IsBuilder]

    def app_and_user(self, data):
        user = User.objects.filter(username=data["receive_user"]).first()
        if user is None:
            raise NotFound(f"No user named '{data['receive_user']}'.")
        app = App.objects.select_related("owner").filter(id=data["receive_repo"]).first()
        if app is None:
            raise NotFound(f"No app named '{data['receive_repo']}'.")
        if not app.can_use(user):
            raise deny(user, "push to", app)
        return app, user


class KeyHookView(HookView):
    """Whose key is this? The builder's SSH server asks before it lets a key in."""

    @extend_schema(responses={200: dict})
    def get(self, request, fingerprint):
        key = Key.objects.select_related("owner").filter(fingerprint=fingerprint.lower()).first()
        if key is None:
            raise NotFound("No user has this key; add it with `deis keys:add`.")
        return Response({"username": key.owner.username, "fingerprint": key.fingerprint, "id": key.id})


class PushHookView(HookView):
    serializer_class = serializers.PushHookInput

    @extend_schema(responses={201: dict})
    def post(self, request):
        data = validated(serializers.PushHookInput, request)
        app, user = self.app_and_user(data)
        push = Push.objects.create(app=app, owner=user, **data)
        return Response({"uuid": str(push.uuid), "app": app.id, "sha": push.sha},
                        status=status.HTTP_201_CREATED)


class ConfigHookView(HookView):
    serializer_class = serializers.ConfigHookInput

    @extend_schema(responses={200: serializers.ConfigSerializer})
    def post(self, request):
        app, _ = self.app_and_user(validated(serializers.ConfigHookInput, request))
        return Response(serializers.ConfigSerializer(app.current_release().config).data)


class BuildHookView(HookView):
    serializer_class = serializers.BuildHookInput

    @extend_schema(responses={200: dict})
    def post(self, request):
        data = validated(serializers.BuildHookInput, request)
        app, user = self.app_and_user(data)
        if data["failed"]:  # kept for `deis builds:info`; nothing is released
            build = Build.objects.create(app=app, owner=user, image="", sha=data.get("sha", ""),
                                         procfile=data.get("procfile") or {}, dockerfile=data.get("dockerfile", ""),
                                         log=data["log"], failed=True)
            return Response({"build": {"uuid": str(build.uuid)}}, status=status.HTTP_201_CREATED)
        build, release = releases.new_build(
            app, user, image=data["image"], sha=data.get("sha", ""),
            procfile=data.get("procfile"), dockerfile=data.get("dockerfile", ""), log=data["log"])
        return Response({"release": {"version": release.version}, "rollout": runtime.queue(app.id),
                         "domains": [app.url, *app.domains.values_list("domain", flat=True)]})


class RolloutHookView(HookView):
    """The builder follows the rollout of the release a push made, to stream its steps."""

    serializer_class = serializers.RolloutHookInput

    @extend_schema(responses={200: dict})
    def post(self, request):
        data = validated(serializers.RolloutHookInput, request)
        app, _ = self.app_and_user(data)
        release = app.releases.filter(version=data["version"]).first()
        if release is None:
            raise NotFound(f"{app.id} has no release v{data['version']}.")
        return Response({"rollout": rollouts.as_json(Rollout.objects.filter(app_id=app.id).first(), app.id),
                         "release": {"version": release.version, "state": release.state,
                                     "failure": release.failure}})
