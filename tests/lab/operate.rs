//! The operator's daily commands on a converged lab: `infra ssh`, `logs`
//! and `exec`, by host name and by role, through the inventory's own SSH
//! settings (the lab's key and strict known_hosts).

use super::*;

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

pub(crate) fn ssh_logs_and_exec_reach_hosts_by_name_and_role(lab: &Lab) {
    let inventory = lab.inventory.display().to_string();

    // ssh with a command: the host's own shell, as the inventory's user.
    let output = lab.infra(&["ssh", "-i", &inventory, "web-01", "--", "hostname; id -un"], None);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout, "web-01\nroot\n");
    // A command's exit status is ssh's.
    let output = lab.infra(&["ssh", "-i", &inventory, "db-01", "--", "exit 7"], None);
    assert_eq!(output.status.code(), Some(7));
    let output = lab.infra(&["ssh", "-i", &inventory, "web-1", "--", "true"], None);
    assert!(text(&output).1.contains("(did you mean `web-01`?)"), "{}", text(&output).1);

    // exec on a role of two hosts: both at once, one prefixed block each.
    let output = lab.infra(&["exec", "-i", &inventory, "load_balancer", "--", "hostname; echo done"], None);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout, "lb-01: lb-01\nlb-01: done\nlb-02: lb-02\nlb-02: done\n");
    // One failing host fails the command, and says which.
    let output = lab.infra(
        &["exec", "-i", &inventory, "load_balancer", "--", "test \"$(hostname)\" = lb-01 || { echo no >&2; exit 3; }"],
        None,
    );
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("lb-02: no") && stderr.contains("failed on `lb-02` (exit status: 3)"), "{stderr}");
    // A single host's output is its own, unprefixed; control characters
    // from the host are made visible, never sent to the terminal.
    let output = lab.infra(&["exec", "-i", &inventory, "db-01", "--", "printf 'a\\033[2Jb\\n'"], None);
    assert_eq!(text(&output).0, "a\\u{1b}[2Jb\n");

    // logs: every service of the host's roles, or the one named.
    let output = lab.infra(&["logs", "-i", &inventory, "web-01", "nginx", "-n", "20"], None);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("nginx"), "nginx's journal:\n{stdout}");
    let output = lab.infra(&["logs", "-i", &inventory, "load_balancer", "keepalived", "-n", "50"], None);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.lines().any(|line| line.starts_with("lb-01: ")), "{stdout}");
    assert!(stdout.lines().any(|line| line.starts_with("lb-02: ")), "{stdout}");
    assert!(stdout.contains("Keepalived"), "keepalived's journal:\n{stdout}");
    let output = lab.infra(&["logs", "-i", &inventory, "web-01", "mariadb"], None);
    assert!(
        text(&output).1.contains("`web-01` runs no service `mariadb`; it runs `nginx`, `firewall`"),
        "{}",
        text(&output).1
    );
    // --follow prints lines as they come: a reload made after it started shows up
    // (systemd writes it into nginx's journal).
    let mut follow = lab
        .command()
        .args(["logs", "-i", &inventory, "web-01", "nginx", "-n", "0", "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("infra logs --follow runs");
    std::thread::sleep(Duration::from_secs(2));
    lab.ssh_ok(&address("web-01"), "systemctl reload nginx");
    let seen = read_until(follow.stdout.take().expect("stdout"), "Reload", Duration::from_secs(20));
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(seen, "the new line arrived while following");
}

/// Whether `needle` appears on `reader` within `timeout`.
fn read_until(reader: impl std::io::Read + Send + 'static, needle: &'static str, timeout: Duration) -> bool {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(reader).lines().map_while(Result::ok) {
            if line.contains(needle) {
                let _ = sender.send(());
                return;
            }
        }
    });
    receiver.recv_timeout(timeout).is_ok()
}

/// Issue 27: `infra run -- COMMAND` runs a one-off command on an app host
/// the way Gunicorn's workers run: as the app's user, in the current
/// release, with the app's environment and the release's `.venv`; its
/// words reach the command as written, its exit status is infra's, and
/// from a terminal it gets one (prompts work).
pub(crate) fn infra_run_runs_a_one_off_command_as_the_app_in_the_current_release(lab: &Lab) {
    let inventory = lab.inventory.display().to_string();
    let probe = "import os, sys; print(os.getuid() == os.geteuid() != 0, os.getcwd().startswith('/srv/app/releases/'), sys.prefix, os.environ['DATABASE_NAME'], sys.argv[1])";
    let output =
        lab.infra(&["run", "-i", &inventory, "--", "python3", "-c", probe, "$HOME ${DATABASE_PASSWORD} 'x'"], None);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout, "True True /srv/app/current/.venv app $HOME ${DATABASE_PASSWORD} 'x'\n", "{stderr}");
    assert!(stderr.contains("run: on `app-01`, in /srv/app/current, as www-data"), "{stderr}");

    // The app's own code and database, as a management command would use them.
    let query = "from app import engine, text\nwith engine.connect() as c: print(c.execute(text('SELECT count FROM hits')).scalar_one() > 0)";
    let output = lab.infra(&["run", "-i", &inventory, "app", "--", "python3", "-c", query], None);
    assert_eq!(text(&output).0, "True\n", "{}", text(&output).1);

    let output = lab.infra(&["run", "-i", &inventory, "--", "sh", "-c", "exit 3"], None);
    assert_eq!(output.status.code(), Some(3), "the command's status is infra's");
    let output = lab.infra(&["run", "-i", &inventory, "web-01", "--", "true"], None);
    assert!(text(&output).1.contains("`web-01` is not an app host; the app hosts are `app-01`"), "{}", text(&output).1);

    // From a terminal (script(1) gives infra one), the command has one too.
    let infra = lab.command().get_program().to_string_lossy().into_owned();
    let line = format!("{infra} run -i {inventory} -- python3 -c 'import sys; print(\"tty\", sys.stdin.isatty())'");
    let output = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .envs(lab.command().get_envs().filter_map(|(key, value)| Some((key, value?))))
        .output()
        .expect("script runs");
    let (stdout, stderr) = text(&output);
    assert!(stdout.contains("tty True"), "{stdout}{stderr}");
}
