"""URL configuration: pages, the JSON API under /api/v1/, health probes, the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path, register_converter
from django.views.generic import RedirectView

from backups import views as backup_views
from deployments import api as deployment_api
from deployments import delivery
from deployments import views as deployment_views
from dr import api as dr_api
from dr import views as dr_views
from infrastructure import views as infrastructure
from opsconsole import metrics, openapi
from opsconsole.audit import views as audit
from opsconsole.runs import api as runs_api
from opsconsole.ui import views as ui

# Under /api/ a path no route matches answers JSON, like every other API error; so does a crash.
handler404 = "opsconsole.api.not_found"
handler500 = "opsconsole.api.server_error"


class IdConverter:
    """A row id: digits that fit the database's bigint, so a longer one is a 404, never a 500."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        if int(value) > 2**63 - 1:
            raise ValueError("beyond bigint")  # Django then tries the next route, and answers 404
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(IdConverter, "id")

urlpatterns = [
    path("", ui.home, name="home"),
    path("login/", ui.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sudo/", ui.sudo, name="sudo"),
    path("environments/", deployment_views.dashboard, name="environments"),
    path("environments/<slug:name>/", deployment_views.environment_detail, name="environment"),
    path("environments/<slug:name>/deploy/", deployment_views.deploy, name="deploy"),
    path("environments/<slug:name>/rollback/", deployment_views.rollback, name="rollback"),
    path("environments/<slug:name>/lock/", deployment_views.lock, name="lock"),
    path("environments/<slug:name>/runs/<id:run_id>/decide/", deployment_views.decide, name="decide"),
    path("releases/", deployment_views.releases, name="releases"),
    path("releases/sync/", deployment_views.sync_releases, name="sync_releases"),
    path("releases/compare/", deployment_views.compare, name="compare_releases"),
    path("delivery/", delivery.delivery_page, name="delivery"),
    # Backups
    path("backups/", backup_views.backups_page, name="backups"),
    path("backups/policies/new/", backup_views.policy_edit, name="backup_policy_new"),
    path("backups/policies/<id:policy_id>/edit/", backup_views.policy_edit, name="backup_policy_edit"),
    path("backups/policies/<id:policy_id>/delete/", backup_views.policy_delete, name="backup_policy_delete"),
    path("backups/policies/<id:policy_id>/run/", backup_views.backup_now, name="backup_now"),
    path("backups/<id:backup_id>/verify/", backup_views.verify_now, name="backup_verify"),
    path("backups/<id:backup_id>/restore/", backup_views.restore, name="backup_restore"),
    # Disaster recovery
    path("dr/", dr_views.dr_page, name="dr"),
    path("dr/<slug:name>/check/", dr_views.check_now, name="dr_check"),
    path("dr/<slug:name>/failover/", dr_views.request_operation, {"operation": "failover"}, name="dr_failover"),
    path("dr/<slug:name>/drill/", dr_views.request_operation, {"operation": "drill"}, name="dr_drill"),
    path("dr/<slug:name>/failback/", dr_views.request_operation, {"operation": "failback"}, name="dr_failback"),
    path("dr/<slug:name>/runs/<id:run_id>/decide/", dr_views.decide, name="dr_decide"),
    path("dr/<slug:name>/runs/<id:run_id>/resume/", dr_views.resume, name="dr_resume"),
    path("infrastructure/", infrastructure.overview, name="infrastructure"),
    path("infrastructure/<slug:name>/", infrastructure.environment, name="infrastructure_environment"),
    path("infrastructure/<slug:name>/plan/", infrastructure.plan, name="infrastructure_plan"),
    path("infrastructure/<slug:name>/plans/<id:run_id>/apply/", infrastructure.apply, name="infrastructure_apply"),
    path("infrastructure/<slug:name>/runs/<id:run_id>/decide/", infrastructure.decide, name="infrastructure_decide"),
    path("runs/", ui.runs, name="runs"),
    path("runs/selftest/", ui.start_selftest, name="start_selftest"),
    path("runs/<id:run_id>/", ui.run_detail, name="run"),
    path("runs/<id:run_id>/events/", ui.run_events, name="run_events"),
    path("runs/<id:run_id>/cancel/", ui.run_cancel, name="run_cancel"),
    path("audit/", audit.audit_log, name="audit"),
    path("audit/export.csv", audit.audit_export, {"fmt": "csv"}, name="audit_export_csv"),
    path("audit/export.json", audit.audit_export, {"fmt": "json"}, name="audit_export_json"),
    path("audit/verify/", audit.audit_verify, name="audit_verify"),
    path("account/tokens/", ui.tokens, name="tokens"),
    path("account/tokens/new/", ui.token_create, name="token_create"),
    path("account/tokens/<id:token_id>/revoke/", ui.token_revoke, name="token_revoke"),
    path("healthz", ui.healthz, name="healthz"),
    path("readyz", ui.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/v1/openapi.json", openapi.openapi, name="api_openapi"),
    path("api/v1/environments", deployment_api.environments, name="api_environments"),
    path("api/v1/environments/<slug:name>/deploy", deployment_api.deploy, name="api_deploy"),
    path("api/v1/environments/<slug:name>/rollback", deployment_api.rollback, name="api_rollback"),
    path("api/v1/releases", deployment_api.releases, name="api_releases"),
    path("api/v1/dr", dr_api.plans, name="api_dr_plans"),
    path("api/v1/dr/<slug:name>", dr_api.plan_detail, name="api_dr_plan"),
    path("api/v1/dr/<slug:name>/operations", dr_api.operations, name="api_dr_operations"),
    path("api/v1/dr/<slug:name>/failover", dr_api.failover, name="api_dr_failover"),
    path("api/v1/dr/<slug:name>/drill", dr_api.drill, name="api_dr_drill"),
    path("api/v1/dr/<slug:name>/failback", dr_api.failback, name="api_dr_failback"),
    path("api/v1/dr/<slug:name>/runs/<id:run_id>/decide", dr_api.decide, name="api_dr_decide"),
    path("api/v1/runs", runs_api.runs, name="api_runs"),
    path("api/v1/runs/<id:run_id>", runs_api.run_detail, name="api_run"),
    path("api/v1/runs/<id:run_id>/events", runs_api.run_events, name="api_run_events"),
    path("api/v1/runs/<id:run_id>/cancel", runs_api.run_cancel, name="api_run_cancel"),
    # The admin signs in through the console's throttled, audited login page.
    path("admin/login/", RedirectView.as_view(url="/login/", query_string=True)),
    path("admin/", admin.site.urls),
]
