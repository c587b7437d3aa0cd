//! `infra` lays out the classic scaled-up web stack (HAProxy + keepalived,
//! Nginx, Gunicorn, MariaDB) from one YAML inventory. The library holds every
//! concept; `main.rs` only parses arguments and calls in. See
//! docs/ARCHITECTURE.md for the data flow between the modules.

// First, so every module below can print with its macros.
#[macro_use]
pub mod output;

pub mod apply;
pub mod backup;
pub mod catalog;
pub mod checkers;
pub mod cli;
pub mod commands;
pub mod completion;
pub mod debian;
pub mod desired;
pub mod diagnostic;
pub mod diagram;
pub mod doctor;
pub mod facts;
pub mod firewall;
pub mod git;
pub mod inventory;
pub mod lab;
pub mod lock;
pub mod plan;
pub mod reference;
pub mod releases;
pub mod render;
pub mod report;
pub mod requirements;
pub mod role;
pub mod rules;
pub mod sanitize;
pub mod sdist;
pub mod secret;
pub mod selection;
#[cfg(test)]
mod shellcheck;
pub mod source;
pub mod stack;
pub mod starter;
pub mod static_files;
pub mod timings;
pub mod tls;
pub mod topology;
pub mod transport;
pub mod wheels;
