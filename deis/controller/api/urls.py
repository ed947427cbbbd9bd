"""Routes of the Deis v1 API; trailing slashes are optional, as in the original controller."""

from django.urls import re_path

from . import metrics, views

APP = r"(?P<id>[a-z0-9-]+)"
TYPE = r"(?P<type>[a-z0-9_-]+)"
UUID = r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"

urlpatterns = [
    re_path(r"^$", views.RootView.as_view()),
    # auth and users
    re_path(r"^auth/register/?$", views.RegisterView.as_view()),
    re_path(r"^auth/login/?$", views.LoginView.as_view()),
    re_path(r"^auth/cancel/?$", views.CancelView.as_view()),
    re_path(r"^auth/passwd/?$", views.PasswdView.as_view()),
    re_path(r"^auth/tokens/?$", views.TokensView.as_view()),
    re_path(r"^users/?$", views.UsersView.as_view()),
    re_path(r"^admin/perms/(?P<username>[\w.@+-]+)/?$", views.AdminPermDetailView.as_view()),
    re_path(r"^admin/perms/?$", views.AdminPermsView.as_view()),
    # apps
    re_path(rf"^apps/{APP}/config/?$", views.ConfigView.as_view()),
    re_path(rf"^apps/{APP}/builds/{UUID}/?$", views.BuildDetailView.as_view()),
    re_path(rf"^apps/{APP}/builds/?$", views.BuildsView.as_view()),
    re_path(rf"^apps/{APP}/releases/rollback/?$", views.RollbackView.as_view()),
    re_path(rf"^apps/{APP}/releases/v(?P<version>[0-9]{{1,9}})/?$", views.ReleaseDetailView.as_view()),
    re_path(rf"^apps/{APP}/releases/?$", views.ReleasesView.as_view()),
    re_path(rf"^apps/{APP}/containers/{TYPE}/(?P<num>[0-9]{{1,5}})/restart/?$", views.ContainersRestartView.as_view()),
    re_path(rf"^apps/{APP}/containers/{TYPE}/restart/?$", views.ContainersRestartView.as_view()),
    re_path(rf"^apps/{APP}/containers/restart/?$", views.ContainersRestartView.as_view()),
    re_path(rf"^apps/{APP}/containers/{TYPE}/(?P<num>[0-9]{{1,5}})/?$", views.ContainersView.as_view()),
    re_path(rf"^apps/{APP}/containers/{TYPE}/?$", views.ContainersView.as_view()),
    re_path(rf"^apps/{APP}/containers/?$", views.ContainersView.as_view()),
    re_path(rf"^apps/{APP}/domains/(?P<domain>[*\w.-]+)/?$", views.DomainDetailView.as_view()),
    re_path(rf"^apps/{APP}/domains/?$", views.DomainsView.as_view()),
    re_path(rf"^apps/{APP}/settings/?$", views.AppSettingsView.as_view()),
    re_path(rf"^apps/{APP}/whitelist/?$", views.WhitelistView.as_view()),
    re_path(rf"^apps/{APP}/scale/?$", views.ScaleView.as_view()),
    re_path(rf"^apps/{APP}/logs/?$", views.LogsView.as_view()),
    re_path(rf"^apps/{APP}/metrics/?$", metrics.AppMetricsView.as_view()),
    re_path(rf"^apps/{APP}/run/?$", views.RunView.as_view()),
    re_path(rf"^apps/{APP}/jobs/{UUID}/?$", views.JobDetailView.as_view()),
    re_path(rf"^apps/{APP}/jobs/?$", views.JobsView.as_view()),
    re_path(rf"^apps/{APP}/rollout/?$", views.RolloutView.as_view()),
    re_path(rf"^apps/{APP}/perms/(?P<username>[\w.@+-]+)/?$", views.AppPermDetailView.as_view()),
    re_path(rf"^apps/{APP}/perms/?$", views.AppPermsView.as_view()),
    re_path(rf"^apps/{APP}/?$", views.AppDetailView.as_view()),
    re_path(r"^apps/?$", views.AppsView.as_view()),
    re_path(r"^metrics/?$", metrics.PrometheusView.as_view()),
    # keys, certs
    re_path(r"^keys/(?P<key_id>[^/]+)/?$", views.KeyDetailView.as_view()),
    re_path(r"^keys/?$", views.KeysView.as_view()),
    re_path(r"^certs/(?P<common_name>[*\w.-]+)/domain/(?P<domain>[*\w.-]+)/?$", views.CertDomainDetailView.as_view()),
    re_path(r"^certs/(?P<common_name>[*\w.-]+)/domain/?$", views.CertDomainsView.as_view()),
    re_path(r"^certs/(?P<common_name>[*\w.-]+)/?$", views.CertDetailView.as_view()),
    re_path(r"^certs/?$", views.CertsView.as_view()),
    # builder hooks
    re_path(r"^hooks/key/(?P<fingerprint>[0-9a-fA-F:]+)/?$", views.KeyHookView.as_view()),
    re_path(r"^hooks/push/?$", views.PushHookView.as_view()),
    re_path(r"^hooks/config/?$", views.ConfigHookView.as_view()),
    re_path(r"^hooks/build/?$", views.BuildHookView.as_view()),
    re_path(r"^hooks/rollout/?$", views.RolloutHookView.as_view()),
]
