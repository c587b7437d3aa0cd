//! What `infra deploy` says before its plan: the release it makes, where
//! its code comes from, how its requirements differ from what the app hosts
//! serve now, and what each app host will do. Read-only: the one thing it
//! fetches is the serving release's requirements file, for the diff.

use crate::desired::{DesiredState, Releases};
use crate::facts::Connected;
use crate::plan::{PackagesPlan, Plan, ReleasePlan};
use crate::transport::shell_quote;

/// Marks every app host's release as chosen by `infra deploy` (with
/// `--source REV` when given): plan then switches whatever release an
/// earlier choice keeps, and records this one for a plain apply to keep.
/// Errs when the inventory has no app hosts: a deploy would change nothing.
pub(crate) fn mark_as_deploy(rendered: &mut crate::render::Rendered, source: Option<&str>) -> anyhow::Result<()> {
    if !rendered.state.hosts.iter().any(|host| host.releases.is_some()) {
        anyhow::bail!("deploy changed nothing: the inventory has no app hosts");
    }
    let command = match source {
        Some(revision) => format!("infra deploy --source {revision}"),
        None => "infra deploy".to_string(),
    };
    for releases in rendered.state.hosts.iter_mut().filter_map(|host| host.releases.as_mut()) {
        releases.deploy = Some(command.clone());
    }
    Ok(())
}

/// The deploy's header, ending with a blank line.
pub(crate) async fn summary(desired: &DesiredState, plan: &Plan, connected: &Connected) -> String {
    let app_hosts: Vec<(&str, &Releases)> =
        desired.hosts.iter().filter_map(|host| Some((host.name.as_str(), host.releases.as_ref()?))).collect();
    let Some((_, releases)) = app_hosts.first() else { return String::new() };
    let mut text = format!("deploy: release {} {}\n", releases.id, releases.origin);
    let switches =
        plan.hosts.iter().any(|host| host.releases.as_ref().is_some_and(|release| release.switch_to.is_some()));
    // A release already served changes no package: there is nothing to compare.
    if let Some(requirements) = releases.requirements.as_ref().filter(|_| switches) {
        let new = String::from_utf8_lossy(releases.file(&requirements.file).unwrap_or_default()).into_owned();
        let old = serving_requirements(plan, connected, releases, &requirements.file).await;
        text.push_str(&requirements_line(&requirements.file, old.as_deref(), &new));
    }
    for (host, _) in &app_hosts {
        let release =
            plan.hosts.iter().find(|planned| planned.host == *host).and_then(|planned| planned.releases.as_ref());
        text.push_str(&format!("  {host}: {}\n", host_line(release, &releases.id)));
    }
    text.push('\n');
    text
}

fn requirements_line(file: &str, old: Option<&str>, new: &str) -> String {
    let Some(old) = old else { return format!("  {file}: first release with packages\n") };
    let changes = crate::requirements::diff(old, new);
    if changes.is_empty() {
        return format!("  {file}: unchanged (packages are linked, nothing installed)\n");
    }
    let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
    format!("  {file}: {}\n", shown.join(", "))
}

fn host_line(release: Option<&ReleasePlan>, id: &str) -> String {
    let Some(release) = release.filter(|release| release.switch_to.is_some()) else {
        return format!("serves release {id} already");
    };
    let mut steps = Vec::new();
    if release.new {
        steps.push("unpack".to_string());
    }
    match &release.packages {
        Some(PackagesPlan::Install { .. }) => steps.push("install packages".into()),
        Some(PackagesPlan::Reuse { from, .. }) => steps.push(format!("link the packages of {from}")),
        None => {}
    }
    // The plan gives the migration to one host, once for the fleet.
    if release.migrate.is_some() {
        steps.push("migrate".into());
    }
    steps.push(match &release.server {
        Some(server) => format!("switch, restarting Gunicorn: {server}"),
        None => "switch".into(),
    });
    let from =
        release.current.as_deref().map_or_else(|| "no release".to_string(), |current| format!("release {current}"));
    format!("{from} → {id} ({})", steps.join(", "))
}

/// The requirements file of the release the first switching app host
/// serves now; `None` when it serves none or the file is not there.
async fn serving_requirements(plan: &Plan, connected: &Connected, releases: &Releases, file: &str) -> Option<String> {
    let host =
        plan.hosts.iter().find(|host| host.releases.as_ref().is_some_and(|release| release.current.is_some()))?;
    let connection = connected.connections.get(&host.host)?;
    let script = format!("cat {} 2>/dev/null || true\n", shell_quote(&format!("{}/{file}", releases.link)));
    let text = connection.run_script(&script).await.ok()?;
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requirements_line_names_each_change_or_says_none() {
        let old = "Flask==3.1.0\n";
        assert_eq!(
            requirements_line("requirements.txt", Some(old), old),
            "  requirements.txt: unchanged (packages are linked, nothing installed)\n"
        );
        assert_eq!(
            requirements_line("requirements.txt", Some(old), "Flask==3.1.0\nhumanize==4.11.0\n"),
            "  requirements.txt: + humanize==4.11.0\n"
        );
        assert_eq!(requirements_line("r.txt", None, old), "  r.txt: first release with packages\n");
    }
}
