//! The integration tests: one binary, one module per area.

mod support;

mod bad_input;
mod cli;
mod cloud_auth;
mod cloud_glance_nova;
mod cloud_observe;
mod cloud_placement;
mod examples;
mod executor;
mod fleet_rollout;
mod git_source;
mod host_agent;
mod host_cloud;
mod host_commands;
mod host_drivers;
mod host_planner;
mod host_safety;
mod host_watch;
mod hostile_input;
mod import;
mod layering;
mod package;
mod plan_apply;
mod planner;
mod saved_plans;
mod scenarios;
mod schema_file;
mod systemd_unit;
