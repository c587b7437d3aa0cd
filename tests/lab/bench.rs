//! `bash bench/plan-vs-ssh.sh`: plan and apply against the physical floor,
//! and the first converge from fresh hosts.

use super::*;

/// An inventory of `count` lab hosts on 10.69.0.0/24: two load balancers,
/// one database, the rest split between web and app.
pub(crate) fn bench_inventory(count: usize) -> (String, Vec<(String, String)>) {
    let mut hosts = vec![
        ("lb-01".to_string(), 11, "load_balancer"),
        ("lb-02".to_string(), 12, "load_balancer"),
        ("db-01".to_string(), 13, "database"),
    ];
    for index in 0..count.saturating_sub(3) {
        let role = if index % 2 == 0 { "web" } else { "app" };
        hosts.push((format!("{role}-{index:02}"), 20 + index, role));
    }
    let template = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/lab.yml"))
        .expect("lab inventory");
    let (head, rest) = template.split_once("hosts:\n").expect("hosts section");
    let settings = &rest[rest.find("\nload_balancer:").expect("settings")..];
    let mut text = format!("{head}hosts:\n");
    for (name, last, role) in &hosts {
        text.push_str(&format!("  - {{name: {name}, address: 10.69.0.{last}, roles: [{role}]}}\n"));
    }
    // The lab's backups go to web-01, which this fleet names web-00.
    text.push_str(&settings.replace("10.20.0.", "10.69.0.").replace("{host: web-01,", "{host: web-00,"));
    (text, hosts.into_iter().map(|(name, last, _)| (name, format!("10.69.0.{last}"))).collect())
}

/// The physical floor: a fresh SSH connection to every host in parallel, running `true`.
fn ssh_floor(lab: &Lab, hosts: &[(String, String)]) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (_, address) in hosts {
            scope.spawn(move || {
                let output = lab.ssh(address, "true");
                assert_success(&output, "ssh true");
            });
        }
    });
    started.elapsed()
}

/// The release the benchmarks' labs boot: trixie, or Debian 12 with
/// `INFRA_BENCH_RELEASE=bookworm`.
fn use_bench_release() {
    let release: &'static str = match std::env::var("INFRA_BENCH_RELEASE").as_deref() {
        Ok("bookworm") => "bookworm",
        _ => "trixie",
    };
    set_release(release);
    println!("BENCH hosts run {release}");
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `bash bench/plan-vs-ssh.sh`: a no-op plan against the physical floor,
/// for 5 and for 50 lab hosts, measured in one run. Prints ratios.
pub(crate) fn bench_plan_against_the_ssh_floor() {
    if !lab_available("bench_plan_against_the_ssh_floor") {
        return;
    }
    use_bench_release();
    let rounds = 7;
    for count in [5, 50] {
        let (text, hosts) = bench_inventory(count);
        let lab = Lab::up_with(&text);
        let started = Instant::now();
        assert_success(&lab.apply(&lab.inventory, &[]), "first converge");
        println!("BENCH {count} hosts: first converge from fresh hosts {:.1} s", started.elapsed().as_secs_f64());
        let warm = lab.plan(&lab.inventory, &["--detailed-exitcode"]);
        assert_eq!(
            warm.status.code(),
            Some(0),
            "the bench needs a no-op plan:\n{}",
            String::from_utf8_lossy(&warm.stdout)
        );
        let (mut floors, mut plans, mut applies) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            floors.push(ssh_floor(&lab, &hosts));
            let started = Instant::now();
            let output = lab.plan(&lab.inventory, &["--detailed-exitcode"]);
            plans.push(started.elapsed());
            assert_eq!(output.status.code(), Some(0));
            let started = Instant::now();
            let output = lab.apply(&lab.inventory, &[]);
            applies.push(started.elapsed());
            assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to do"), "the bench needs a no-op apply");
        }
        let (floor, plan, apply) = (median(floors), median(plans), median(applies));
        println!(
            "BENCH {count} hosts: no-op apply median {:.0} ms, ratio {:.2} to the floor (goal <= 1.2)",
            apply.as_secs_f64() * 1000.0,
            apply.as_secs_f64() / floor.as_secs_f64()
        );
        println!(
            "BENCH {count} hosts: ssh floor (fresh parallel `ssh host true`) median {:.0} ms, no-op plan median {:.0} ms, ratio {:.2} (goal <= 1.1)",
            floor.as_secs_f64() * 1000.0,
            plan.as_secs_f64() * 1000.0,
            plan.as_secs_f64() / floor.as_secs_f64()
        );
        drop(lab);
    }
}

/// `bash bench/plan-then-apply.sh`: `infra plan` then `infra apply` of a
/// change, the apply riding the plan's warm SSH masters, against the same
/// two runs with the masters off (`INFRA_SSH_PERSIST=0`: each run connects
/// afresh), interleaved on one lab. Prints both medians and the ratio, and
/// the apply alone.
pub(crate) fn bench_apply_after_plan_against_fresh_runs() {
    if !lab_available("bench_apply_after_plan_against_fresh_runs") {
        return;
    }
    use_bench_release();
    let lab = Lab::up();
    assert_success(&lab.apply(&lab.inventory, &[]), "first converge");
    let inventories =
        [lab.inventory.clone(), lab.inventory_with("bench-leastconn.yml", "balance: roundrobin", "balance: leastconn")];
    let run = |persist: bool, verb: &str, inventory: &Path| {
        let mut command = lab.command();
        command.env("INFRA_VRRP_SECRET", VRRP_SECRET).env("INFRA_DB_PASSWORD", DB_PASSWORD);
        if !persist {
            command.env("INFRA_SSH_PERSIST", "0");
        }
        let extra: &[&str] = if verb == "apply" { &["--yes"] } else { &[] };
        let started = Instant::now();
        let output = command.arg(verb).args(extra).args(["--no-progress", "-i"]).arg(inventory).output().expect("runs");
        assert_success(&output, verb);
        started.elapsed()
    };
    let (mut fresh, mut warm, mut fresh_apply, mut warm_apply) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..7 {
        // Each pair changes the balancing back or forth: a real apply.
        for (persist, totals, applies) in [(false, &mut fresh, &mut fresh_apply), (true, &mut warm, &mut warm_apply)] {
            let inventory = &inventories[(round * 2 + usize::from(persist) + 1) % 2];
            let plan = run(persist, "plan", inventory);
            let apply = run(persist, "apply", inventory);
            totals.push(plan + apply);
            applies.push(apply);
        }
    }
    let ms = |samples: Vec<Duration>| median(samples).as_secs_f64() * 1000.0;
    let (fresh, warm, fresh_apply, warm_apply) = (ms(fresh), ms(warm), ms(fresh_apply), ms(warm_apply));
    println!(
        "BENCH plan then apply of a change, 5 hosts: fresh connections median {fresh:.0} ms, warm {warm:.0} ms, ratio {:.2}",
        warm / fresh
    );
    println!(
        "BENCH the apply alone: fresh median {fresh_apply:.0} ms, after the plan {warm_apply:.0} ms, ratio {:.2}",
        warm_apply / fresh_apply
    );
}

/// `bash bench/release-reuse.sh`: a release with PyPI packages (wheels
/// fetched with a cold cache, installed on the host) against the next,
/// code-only release (the packages hard-linked), in one run. Prints both
/// and the ratio.
pub(crate) fn bench_code_only_release_against_the_first() {
    if !lab_available("bench_code_only_release_against_the_first") {
        return;
    }
    let lab = Lab::up();
    assert_success(&lab.apply(&lab.inventory, &[]), "first converge");
    let cache = tempfile::tempdir().expect("a cold wheel cache");
    // The example app's own packages (Flask, SQLAlchemy, Alembic, PyMySQL) and one more.
    let requirements = "humanize==4.11.0\n";
    let timed = |inventory: &Path| {
        let started = Instant::now();
        let mut deploy = lab.converge_command("deploy", inventory, &[]);
        let output = deploy.env("XDG_CACHE_HOME", cache.path()).output().expect("infra runs");
        assert_success(&output, "deploy of a release");
        (started.elapsed(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (first, log) = timed(&lab.app_version_with("bench1", 5, Some((requirements, "humanize"))));
    assert!(log.contains("installing the release's packages"), "{log}");
    let (second, log) = timed(&lab.app_version_with("bench2", 5, Some((requirements, "humanize"))));
    assert!(log.contains("linking the packages of an earlier release") && !log.contains("installing"), "{log}");
    println!("BENCH release with packages (cold wheel cache, install on the host): {:.2} s", first.as_secs_f64());
    println!("BENCH code-only release (packages hard-linked): {:.2} s", second.as_secs_f64());
    println!("BENCH ratio first / code-only: {:.1}x", first.as_secs_f64() / second.as_secs_f64());
}

/// `bash bench/bastion.sh`: 50 cloud-like hosts (an `admin` user with sudo,
/// no root login), all but the balancers behind one bastion on 10.73.0.5.
/// Ten no-op plans and applies must all pass, each run must open exactly
/// one connection to the bastion, and the no-op plan is printed against
/// the floor through the same bastion: one connection to it, then a fresh
/// SSH to every host over it in parallel, running `true`.
pub(crate) fn bench_plan_through_a_bastion() {
    if !lab_available("bench_plan_through_a_bastion") {
        return;
    }
    use_bench_release();
    let count = 50;
    let (text, hosts) = bastion_inventory(count);
    let lab = Lab::up_named("infrajump", &text);
    let started = Instant::now();
    assert_success(&lab.apply(&lab.inventory, &[]), "first converge through the bastion");
    println!("BENCH {count} hosts behind a bastion: first converge {:.1} s", started.elapsed().as_secs_f64());
    let accepted = || {
        let journal = lab.admin_ssh_ok(BENCH_BASTION, false, "sudo -n journalctl -q --no-pager -u ssh");
        journal.lines().filter(|line| line.contains("Accepted publickey for admin")).count()
    };
    let rounds = 10;
    let (mut floors, mut plans, mut applies) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        floors.push(floor_through_bastion(&lab, &hosts));
        let before = accepted();
        let started = Instant::now();
        let output = lab.plan(&lab.inventory, &["--detailed-exitcode"]);
        plans.push(started.elapsed());
        assert_eq!(output.status.code(), Some(0), "round {round}: no-op plan: {}", stderr(&output));
        // The journal read itself is one more accepted connection.
        assert_eq!(accepted() - before, 2, "round {round}: the plan opened more than one connection to the bastion");
        let started = Instant::now();
        let output = lab.apply(&lab.inventory, &[]);
        applies.push(started.elapsed());
        assert!(stderr(&output).contains("nothing to do"), "round {round}: no-op apply: {}", stderr(&output));
    }
    let (floor, plan, apply) = (median(floors), median(plans), median(applies));
    println!("BENCH {count} hosts behind a bastion: {rounds} of {rounds} plans and applies passed");
    println!(
        "BENCH {count} hosts behind a bastion: floor (one bastion connection, then a fresh `ssh true` to every host over it) median {:.0} ms, no-op plan median {:.0} ms, ratio {:.2}; no-op apply median {:.0} ms, ratio {:.2}",
        floor.as_secs_f64() * 1000.0,
        plan.as_secs_f64() * 1000.0,
        plan.as_secs_f64() / floor.as_secs_f64(),
        apply.as_secs_f64() * 1000.0,
        apply.as_secs_f64() / floor.as_secs_f64()
    );
}

const BENCH_BASTION: &str = "10.73.0.5";

/// `count` hosts like [`bench_inventory`]'s on 10.73.0.0/24, logging in as
/// `admin` with sudo, every one but the balancers behind the bastion.
fn bastion_inventory(count: usize) -> (String, Vec<(String, String)>) {
    let (text, hosts) = bench_inventory(count);
    let text =
        text.replace("10.69.0.", "10.73.0.").replace("ssh:\n  user: root\n", "ssh:\n  user: admin\n  become: sudo\n");
    let text = text
        .lines()
        .map(|line| {
            if line.starts_with("  - {name: ") && !line.contains("load_balancer") {
                line.replacen("  - {name: ", &format!("  - {{ssh: {{jump: {BENCH_BASTION}}}, name: "), 1)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text =
        text.replace("admin_cidrs: [10.73.0.254/32]", &format!("admin_cidrs: [10.73.0.254/32, {BENCH_BASTION}/32]"));
    let hosts = hosts.into_iter().map(|(name, address)| (name, address.replace("10.69.0.", "10.73.0."))).collect();
    (text + "\n", hosts)
}

/// One connection to the bastion, then a fresh SSH to every host over it,
/// all at once, running `true`: what infra's own path cannot beat.
fn floor_through_bastion(lab: &Lab, hosts: &[(String, String)]) -> Duration {
    let key = lab.state.path().join("id_ed25519");
    let known_hosts = lab.state.path().join("known_hosts");
    let socket = lab.state.path().join("bastion.sock");
    let options = |command: &mut Command| {
        command
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-i"])
            .arg(&key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()));
    };
    let started = Instant::now();
    let mut master = Command::new("ssh");
    options(&mut master);
    assert_success(
        &master
            .args(["-M", "-f", "-N", "-S"])
            .arg(&socket)
            .arg(format!("admin@{BENCH_BASTION}"))
            .output()
            .expect("ssh"),
        "the bastion's master connection",
    );
    std::thread::scope(|scope| {
        for (name, address) in hosts {
            let (options, socket) = (&options, &socket);
            scope.spawn(move || {
                let mut command = Command::new("ssh");
                options(&mut command);
                if !name.starts_with("lb-") {
                    command.arg("-o").arg(format!(
                        "ProxyCommand=ssh -o BatchMode=yes -S {} -W %h:%p {BENCH_BASTION}",
                        socket.display()
                    ));
                }
                let output = command.arg(format!("admin@{address}")).arg("true").output().expect("ssh runs");
                assert_success(&output, "ssh true through the bastion");
            });
        }
    });
    let elapsed = started.elapsed();
    let _ = Command::new("ssh").arg("-S").arg(&socket).args(["-O", "exit", BENCH_BASTION]).output();
    elapsed
}
