//! What `infra init` writes: a commented inventory of the seeds' topology
//! (two balancers, web, app and database hosts, counts per tier chosen),
//! numbered on one subnet the way the example inventories are, with a
//! small app and a static page beside it so the file validates, the
//! schema its first line points editors at, and
//! converges on a lab, exactly as written. The text is built here, not
//! read from a template file, because its host list is a loop over counts.

use std::fmt::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

/// What the operator chose; every field has the five-server default.
#[derive(Clone, Debug)]
pub struct Choices {
    pub subnet: Ipv4Net,
    pub load_balancers: u8,
    pub web: u8,
    pub app: u8,
    /// SSH settings for `infra lab up` (its key and known_hosts) instead of production's.
    pub lab: bool,
}

impl Default for Choices {
    fn default() -> Self {
        Choices {
            subnet: Ipv4Net::new(Ipv4Addr::new(10, 20, 0, 0), 24).unwrap_or_default(),
            load_balancers: 2,
            web: 1,
            app: 1,
            lab: false,
        }
    }
}

/// The most hosts a tier gets in the starter's numbering (.11–.19, .21–.29, …).
pub const MOST_PER_TIER: u8 = 9;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChoiceError {
    #[error("`--{tier} {count}`: a tier has 1 to {MOST_PER_TIER} hosts in the starter inventory")]
    Count { tier: &'static str, count: u8 },
    #[error(
        "`--subnet {0}`: the starter numbers hosts .10 to .49 and the admin address last, so the subnet must be /26 or larger"
    )]
    SubnetTooSmall(Ipv4Net),
}

/// One file to write, relative to the directory `init` runs in.
#[derive(Clone, Debug)]
pub struct StarterFile {
    pub path: PathBuf,
    pub content: String,
}

/// The inventory (at `inventory`) and the app and static page it names.
pub fn files(choices: &Choices, inventory: PathBuf) -> Result<Vec<StarterFile>, ChoiceError> {
    check(choices)?;
    Ok(vec![
        StarterFile { path: inventory, content: inventory_text(choices) },
        StarterFile { path: PathBuf::from("app/app.py"), content: APP.to_string() },
        StarterFile { path: PathBuf::from("static/index.html"), content: INDEX.to_string() },
        StarterFile { path: PathBuf::from(SCHEMA_FILE), content: schema_text() },
    ])
}

/// The schema file the inventory's first line points editors at.
pub const SCHEMA_FILE: &str = "infra.schema.json";

fn schema_text() -> String {
    let document = crate::inventory::schema::document();
    serde_json::to_string_pretty(&document).map_or_else(|_| "{}".to_string(), |text| text + "\n")
}

fn check(choices: &Choices) -> Result<(), ChoiceError> {
    for (tier, count) in [("load-balancers", choices.load_balancers), ("web", choices.web), ("app", choices.app)] {
        if !(1..=MOST_PER_TIER).contains(&count) {
            return Err(ChoiceError::Count { tier, count });
        }
    }
    if choices.subnet.prefix_len() > 26 {
        return Err(ChoiceError::SubnetTooSmall(choices.subnet));
    }
    Ok(())
}

/// The subnet's address `offset` after its network address.
fn nth(subnet: Ipv4Net, offset: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + offset)
}

fn inventory_text(choices: &Choices) -> String {
    let mut out = String::from(HEADER);
    out.push_str(&ssh_section(choices));
    out.push_str("\nhosts:\n");
    hosts_section(&mut out, choices);
    let net = choices.subnet;
    let admin = Ipv4Addr::from(u32::from(net.broadcast()) - 1);
    let _ = write!(
        out,
        "{}",
        SETTINGS
            .replace("{vip}", &format!("{}/{}", nth(net, 10), net.prefix_len()))
            .replace("{db}", &nth(net, 41).to_string())
            .replace("{admin}", &admin.to_string())
    );
    out
}

fn ssh_section(choices: &Choices) -> String {
    if choices.lab {
        let state = crate::lab::state_dir();
        format!(
            "# `infra lab up` writes its key pair and every host's key here; plan and\n# apply check host keys strictly against them.\nssh:\n  user: root\n  identity: {}\n  known_hosts: {}\n",
            state.join("id_ed25519").display(),
            state.join("known_hosts").display()
        )
    } else {
        "# How infra reaches the hosts. A cloud image's user with passwordless sudo:\n#   user: admin\n#   become: sudo\n# A bastion in front of them: `jump: admin@203.0.113.5`.\nssh:\n  user: root\n  port: 22\n  # identity: ~/.ssh/id_ed25519\n".to_string()
    }
}

fn hosts_section(out: &mut String, choices: &Choices) {
    let net = choices.subnet;
    for index in 1..=choices.load_balancers {
        // The first balancer holds the virtual IP while it is up.
        let priority = 150 - 50 * u32::from(index.min(2) - 1) - u32::from(index.saturating_sub(2));
        let _ = writeln!(
            out,
            "  - name: lb-{index:02}\n    address: {}\n    roles: [load_balancer]\n    vrrp: {{priority: {priority}}}",
            nth(net, 10 + u32::from(index))
        );
    }
    for (role, prefix, first, count) in [("web", "web", 20, choices.web), ("app", "app", 30, choices.app)] {
        for index in 1..=count {
            let address = nth(net, first + u32::from(index));
            let _ = writeln!(out, "  - name: {prefix}-{index:02}\n    address: {address}\n    roles: [{role}]");
        }
    }
    let _ = writeln!(out, "  - name: db-01\n    address: {}\n    roles: [database]", nth(net, 41));
}

const HEADER: &str = "\
# yaml-language-server: $schema=infra.schema.json
#
# The inventory of one web stack, written by `infra init`: two HAProxy load
# balancers sharing a virtual IP (keepalived), Nginx web servers, Gunicorn
# app servers and a MariaDB database. Every key: docs/inventory.md.
#
#   infra validate          # offline: the stack's rules and the services' own checkers
#   infra plan              # what apply would change on the hosts, read over SSH
#   infra apply             # change them, database first, balancers last
#
# Try it on real Debian hosts on this machine first (root): `infra init --lab`,
# then `infra lab up && infra apply`.

";

const SETTINGS: &str = "
load_balancer:
  # Clients reach the stack here; it moves to the other balancer when one dies.
  virtual_ip: {vip}
  interface: eth0
  virtual_router_id: 51
  # Secrets come from the environment, never from this file:
  #   export INFRA_VRRP_SECRET=... INFRA_DB_PASSWORD=...
  vrrp_secret: {env: INFRA_VRRP_SECRET}
  frontend_port: 80

web:
  port: 80
  server_name: www.example.test
  static_root: /var/www/infra
  static_source: static

app:
  # `module:callable` of your WSGI app in `source`; `requirements: requirements.txt`
  # there adds PyPI packages, `migrate: [...]` runs your migrations once per release.
  module: \"app:app\"
  bind: 0.0.0.0:8000
  workers: 2
  source: app
  directory: /srv/app

database:
  name: app
  user: app
  password: {env: INFRA_DB_PASSWORD}
  port: 3306
  # The app hosts reach it at {db}. A backup a day, copied to web-01 so it
  # outlives the database host; `infra backup verify` proves one restores.
  backup:
    schedule: daily
    keep: 7
    destination: {host: web-01, directory: /var/backups/infra-db}

# Every host accepts SSH only from these networks: put the address you run
# infra from (in the lab, this machine's: the subnet's last address).
firewall:
  admin_cidrs: [{admin}/32]
";

/// A WSGI app that proves the whole path: Debian's Flask and PyMySQL,
/// which the app hosts get anyway, so it needs no PyPI package.
const APP: &str = r#""""The starter app `infra init` wrote: replace it with yours (`app.source`).

GET / answers with the app host's name and the database's version, so one
request through the virtual IP proves HAProxy -> Nginx -> Gunicorn -> MariaDB.
infra gives it the database settings in its environment.
"""

import os
import socket

import pymysql
from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def index():
    connection = pymysql.connect(
        host=os.environ["DATABASE_HOST"],
        port=int(os.environ.get("DATABASE_PORT", "3306")),
        user=os.environ["DATABASE_USER"],
        password=os.environ["DATABASE_PASSWORD"],
        database=os.environ["DATABASE_NAME"],
    )
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        (version,) = cursor.fetchone()
    return jsonify(host=socket.gethostname(), database=version)
"#;

const INDEX: &str = "<!doctype html>\n<title>infra</title>\n<p>Served by Nginx from <code>static/</code>, which <code>infra init</code> wrote.</p>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_five_server_topology() {
        let text = inventory_text(&Choices::default());
        for name in ["lb-01", "lb-02", "web-01", "app-01", "db-01"] {
            assert!(text.contains(&format!("name: {name}\n")), "{name}:\n{text}");
        }
        assert!(text.contains("virtual_ip: 10.20.0.10/24"), "{text}");
        assert!(text.contains("admin_cidrs: [10.20.0.254/32]"), "{text}");
        assert!(text.contains("vrrp: {priority: 150}") && text.contains("vrrp: {priority: 100}"), "{text}");
    }

    #[test]
    fn counts_and_subnet_number_the_hosts() {
        let choices =
            Choices { subnet: "172.16.8.0/22".parse().expect("subnet"), load_balancers: 3, web: 2, app: 4, lab: false };
        let text = inventory_text(&choices);
        assert!(text.contains("name: app-04\n    address: 172.16.8.34\n"), "{text}");
        assert!(text.contains("name: web-02\n    address: 172.16.8.22\n"), "{text}");
        assert!(text.contains("vrrp: {priority: 99}"), "three distinct priorities:\n{text}");
        assert!(text.contains("admin_cidrs: [172.16.11.254/32]"), "{text}");
    }

    #[test]
    fn impossible_choices_are_refused() {
        let too_many = Choices { web: 10, ..Choices::default() };
        assert_eq!(check(&too_many), Err(ChoiceError::Count { tier: "web", count: 10 }));
        let none = Choices { app: 0, ..Choices::default() };
        assert_eq!(check(&none), Err(ChoiceError::Count { tier: "app", count: 0 }));
        let small = Choices { subnet: "10.0.0.0/27".parse().expect("subnet"), ..Choices::default() };
        assert!(matches!(check(&small), Err(ChoiceError::SubnetTooSmall(_))));
    }
}
