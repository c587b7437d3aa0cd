//! The lab suite's own test harness (`harness = false` in Cargo.toml): the
//! scenarios share one booted lab per Debian release, which libtest cannot
//! express, yet a developer must be able to re-run the one that failed.
//!
//! `cargo test --test lab` runs every scenario in the order of [`SUITE`];
//! `cargo test --test lab NAME…` runs those whose full name contains one of
//! the NAMEs (`trixie::a_failing_health_check`, or `a_failing_health_check`
//! for both releases), on a freshly booted lab that is first converged when
//! a chosen scenario needs it. `--list` prints the names, `--exact` matches
//! whole names, `--ignored` adds the benchmarks, which otherwise run only
//! when named. Other flags cargo passes (`--nocapture`, `--quiet`) are
//! accepted and ignored: output is never captured here.

use std::process::ExitCode;
use std::time::Instant;

use super::*;

/// What a shared-lab scenario expects to find when it starts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Booted hosts that no apply has touched yet.
    Fresh,
    /// Hosts converged by [`CONVERGE`], the first scenario that needs them.
    Converged,
}

/// The scenario that converges a fresh lab; run first for any scenario that
/// [`Needs::Converged`] when it is not chosen itself.
const CONVERGE: &str = "apply_converges_the_stack_and_serves_through_the_vip";

/// One scenario on the release's shared lab, in suite order.
struct Shared {
    name: &'static str,
    needs: Needs,
    run: fn(&Lab),
}

macro_rules! shared {
    ($needs:ident: $($scenario:ident),* $(,)?) => {
        [$(Shared { name: stringify!($scenario), needs: Needs::$needs, run: $scenario }),*]
    };
}

/// The shared lab's scenarios: the order is the suite's, and a scenario may
/// rely only on what [`Needs`] says, never on what one before it left.
const SUITE: [&[Shared]; 2] = [
    &shared![Fresh:
        every_host_runs_the_release_it_was_booted_with,
        plan_on_fresh_hosts_lists_everything_in_stage_order,
        every_host_answers_ssh_and_systemd_runs,
        packages_install_with_no_network,
        hosts_have_no_route_out_and_dns_fails_fast,
    ],
    &shared![Converged:
        apply_converges_the_stack_and_serves_through_the_vip,
        second_plan_and_apply_change_nothing,
        a_restored_backup_brings_the_counter_back,
        a_backup_under_load_fails_no_request,
        restore_drills_pass_on_a_good_backup_and_fail_on_a_corrupted_one,
        a_backup_forged_on_the_destination_is_refused_by_restore_and_drill,
        backups_outlive_the_database_host,
        a_point_in_time_restore_stops_at_the_chosen_second,
        a_risky_database_change_takes_a_backup_first,
        releases_switch_under_load_and_roll_back_in_seconds,
        a_release_brings_its_own_packages_and_code_only_releases_reuse_them,
        a_release_serves_with_its_own_gunicorn_and_a_new_one_restarts_with_no_failed_request,
        an_upload_survives_a_deploy_and_a_rollback,
        release_hooks_run_before_and_after_the_switch_and_a_failing_one_switches_back,
        app_processes_follow_deploys_and_rollbacks_and_a_lower_count_stops_the_rest,
        static_files_are_published_per_release_and_roll_back_with_it,
        a_compiled_dependency_is_built_on_the_app_host,
        the_django_example_deploys_and_rolls_back_with_its_static_files_and_worker,
        a_release_that_crashes_at_import_stops_at_the_first_host,
        a_killed_deploy_leaves_current_valid_and_the_next_run_completes_it,
        migrations_run_before_the_switch_and_a_failed_one_switches_nothing,
        the_firewall_lets_each_tier_reach_only_the_next,
        the_database_is_locked_down,
        the_vip_serves_https_with_the_lab_certificate,
        a_ruleset_that_would_cut_ssh_is_refused_before_it_is_sent,
        plans_and_saved_plans_hold_no_secret,
        plan_of_a_converged_lab_is_empty_and_touches_nothing,
        plan_sees_a_hand_edit_and_a_removed_package_after_the_fast_path,
        apply_after_plan_rides_the_plans_warm_connections,
        plan_of_one_changed_setting_touches_only_what_follows,
        a_load_balancer_change_applies_with_zero_failed_requests,
        two_simultaneous_applies_never_both_change_hosts,
        a_held_lock_refuses_waits_and_breaks,
        a_broken_haproxy_override_fails_validation_and_changes_nothing,
        a_failing_health_check_rolls_the_host_back,
        saved_plans_apply_exactly_and_refuse_drift,
        apply_refuses_without_a_terminal_or_yes,
        a_killed_apply_converges_on_the_next_run,
        plan_limit_and_saved_plan,
        ssh_logs_and_exec_reach_hosts_by_name_and_role,
        infra_run_runs_a_one_off_command_as_the_app_in_the_current_release,
        plan_refuses_unknown_and_changed_host_keys,
        plan_reports_unreachable_and_garbled_hosts,
        vrrp_moves_the_virtual_ip_when_the_holder_stops,
        cut_and_heal_take_a_link_down_and_up,
        down_leaves_nothing_behind_and_up_works_again,
    ],
];

/// A scenario that boots a lab of its own (or none), run after the shared
/// ones of its release.
struct Alone {
    name: &'static str,
    run: fn(),
}

/// Per release, after the shared lab is down.
const ALONE_PER_RELEASE: [Alone; 3] = [
    Alone {
        name: "a_cloud_like_lab_converges_through_sudo_and_a_bastion",
        run: a_cloud_like_lab_converges_through_sudo_and_a_bastion,
    },
    Alone {
        name: "two_web_and_two_app_hosts_change_with_zero_failed_requests",
        run: two_web_and_two_app_hosts_change_with_zero_failed_requests,
    },
    Alone { name: "multi_role_hosts_converge_in_stage_order", run: multi_role_hosts_converge_in_stage_order },
];

/// Once, after both releases: refusals that boot nothing, then the mixed fleet.
const ALONE_ONCE: [Alone; 4] = [
    Alone { name: "refusals::lab_refuses_without_root", run: lab_refuses_without_root },
    Alone {
        name: "refusals::lab_refuses_without_its_tools_and_names_the_package",
        run: lab_refuses_without_its_tools_and_names_the_package,
    },
    Alone { name: "refusals::lab_refuses_a_subnet_this_machine_routes", run: lab_refuses_a_subnet_this_machine_routes },
    Alone {
        name: "mixed::a_mixed_bookworm_and_trixie_fleet_converges_and_serves",
        run: a_mixed_bookworm_and_trixie_fleet_converges_and_serves,
    },
];

/// Benchmarks: only when named or with `--ignored` (bench/*.sh).
const BENCHMARKS: [Alone; 4] = [
    Alone { name: "bench::bench_plan_through_a_bastion", run: super::bench::bench_plan_through_a_bastion },
    Alone {
        name: "bench::bench_apply_after_plan_against_fresh_runs",
        run: super::bench::bench_apply_after_plan_against_fresh_runs,
    },
    Alone { name: "bench::bench_plan_against_the_ssh_floor", run: super::bench::bench_plan_against_the_ssh_floor },
    Alone {
        name: "bench::bench_code_only_release_against_the_first",
        run: super::bench::bench_code_only_release_against_the_first,
    },
];

const RELEASES: [&str; 2] = ["trixie", "bookworm"];

/// What the command line asks for.
struct Selection {
    filters: Vec<String>,
    exact: bool,
    ignored: bool,
    list: bool,
}

impl Selection {
    fn from_args() -> Selection {
        let mut selection = Selection { filters: Vec::new(), exact: false, ignored: false, list: false };
        for argument in std::env::args().skip(1) {
            match argument.as_str() {
                "--exact" => selection.exact = true,
                "--ignored" | "--include-ignored" => selection.ignored = true,
                "--list" => selection.list = true,
                flag if flag.starts_with('-') => {}
                filter => selection.filters.push(filter.to_string()),
            }
        }
        selection
    }

    fn chosen(&self, name: &str) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|filter| if self.exact { name == filter } else { name.contains(filter.as_str()) })
    }

    fn chosen_benchmark(&self, name: &str) -> bool {
        (self.ignored || !self.filters.is_empty()) && self.chosen(name)
    }
}

/// Prints `test NAME ... ok (12.3 s)`, or `FAILED` when dropped while a
/// panic unwinds: the line a developer copies to re-run one scenario.
struct Running {
    name: String,
    /// The scenario's own name, when `name` says more (a prerequisite).
    rerun: String,
    started: Instant,
}

impl Running {
    fn start(name: String) -> Running {
        Running::named(name.clone(), name)
    }

    fn named(name: String, rerun: String) -> Running {
        eprintln!("test {name} ...");
        Running { name, rerun, started: Instant::now() }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let verdict = if std::thread::panicking() { "FAILED" } else { "ok" };
        eprintln!("test {} ... {verdict} ({:.1} s)", self.name, self.started.elapsed().as_secs_f64());
        if std::thread::panicking() {
            eprintln!("re-run it alone: cargo test --test lab -- --exact {}", self.rerun);
        }
    }
}

pub(crate) fn main() -> ExitCode {
    let selection = Selection::from_args();
    if selection.list {
        for name in all_names() {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    if !lab_available("the lab suite") {
        return ExitCode::SUCCESS;
    }
    let mut ran = 0;
    for release_name in RELEASES {
        set_release(release_name);
        ran += run_shared(release_name, &selection);
        for alone in &ALONE_PER_RELEASE {
            let name = format!("{release_name}::{}", alone.name);
            ran += run_alone(&name, alone.run, selection.chosen(&name));
        }
    }
    for alone in &ALONE_ONCE {
        ran += run_alone(alone.name, alone.run, selection.chosen(alone.name));
    }
    for bench in &BENCHMARKS {
        ran += run_alone(bench.name, bench.run, selection.chosen_benchmark(bench.name));
    }
    eprintln!("lab suite: {ran} scenarios passed");
    if ran == 0 && !selection.filters.is_empty() {
        eprintln!("no scenario matches {:?}; `cargo test --test lab -- --list` lists them", selection.filters);
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Every scenario's full name, in the order they run.
fn all_names() -> Vec<String> {
    let mut names = Vec::new();
    for release_name in RELEASES {
        names
            .extend(SUITE.iter().flat_map(|part| part.iter()).map(|shared| format!("{release_name}::{}", shared.name)));
        names.extend(ALONE_PER_RELEASE.iter().map(|alone| format!("{release_name}::{}", alone.name)));
    }
    names.extend(ALONE_ONCE.iter().chain(&BENCHMARKS).map(|alone| alone.name.to_string()));
    names
}

/// Runs the chosen shared scenarios of one release on one lab, booted only
/// when at least one is chosen; returns how many ran.
fn run_shared(release_name: &str, selection: &Selection) -> usize {
    let scenarios: Vec<&Shared> = SUITE.iter().flat_map(|part| part.iter()).collect();
    let full = |scenario: &Shared| format!("{release_name}::{}", scenario.name);
    let chosen: Vec<&Shared> = scenarios.iter().copied().filter(|scenario| selection.chosen(&full(scenario))).collect();
    if chosen.is_empty() {
        return 0;
    }
    eprintln!("=== the lab suite on {release_name}");
    let lab = Lab::up();
    let mut converged = false;
    for scenario in &chosen {
        if scenario.needs == Needs::Converged && !converged && scenario.name != CONVERGE {
            let name = format!("{release_name}::{CONVERGE}");
            let _running = Running::named(format!("{name} (what the next one needs)"), name);
            apply_converges_the_stack_and_serves_through_the_vip(&lab);
        }
        converged |= scenario.needs == Needs::Converged;
        let _running = Running::start(full(scenario));
        (scenario.run)(&lab);
    }
    chosen.len()
}

fn run_alone(name: &str, run: fn(), chosen: bool) -> usize {
    if !chosen {
        return 0;
    }
    let _running = Running::start(name.to_string());
    run();
    1
}
