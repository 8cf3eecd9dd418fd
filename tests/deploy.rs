//! The deployment files in `deploy/` against the binary they run: every
//! flag they pass exists in `--help`, ports and paths agree between the
//! Agones Fleet, the FleetAutoscaler, the autoscaler's Service and
//! Deployment and the webhook the controller serves, the policy they ship
//! validates, and the systemd template unit starts a node the way the
//! `process` provider expects.

use std::path::Path;
use std::process::Command;

use shardline::autoscale::http::WEBHOOK_PATH;
use shardline::autoscale::policy::{PolicyFile, ProviderPolicy};
use yaml_rust2::{Yaml, YamlLoader};

fn read(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn docs(path: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shardline"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run shardline --help");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Every `--flag` in `words` is one `shardline SUBCOMMAND --help` lists.
fn assert_flags_exist(subcommand: &str, words: &[&str], what: &str) {
    let text = help(&[subcommand]);
    for w in words.iter().filter(|w| w.starts_with("--")) {
        let flag = w.split('=').next().unwrap();
        assert!(
            text.contains(&format!("{flag} ")) || text.contains(&format!("{flag}\n")),
            "{what}: shardline {subcommand} has no {flag}"
        );
    }
}

fn by_kind<'a>(all: &'a [Yaml], kind: &str) -> &'a Yaml {
    all.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn the_agones_manifests_agree_with_each_other_and_the_binary() {
    let fleet = &docs("deploy/agones/fleet.yaml")[0];
    let fas = &docs("deploy/agones/fleetautoscaler.yaml")[0];
    let ctl = docs("deploy/agones/autoscaler.yaml");
    let (svc, deploy) = (by_kind(&ctl, "Service"), by_kind(&ctl, "Deployment"));
    assert_eq!(fleet["kind"].as_str(), Some("Fleet"));
    assert_eq!(fas["kind"].as_str(), Some("FleetAutoscaler"));
    // The FleetAutoscaler sizes this Fleet through our webhook.
    let fleet_name = fleet["metadata"]["name"].as_str().unwrap();
    assert_eq!(fas["spec"]["fleetName"].as_str(), Some(fleet_name));
    assert_eq!(fas["spec"]["policy"]["type"].as_str(), Some("Webhook"));
    let hook = &fas["spec"]["policy"]["webhook"]["service"];
    assert_eq!(hook["path"].as_str(), Some(WEBHOOK_PATH));
    assert_eq!(hook["name"].as_str(), svc["metadata"]["name"].as_str());
    assert_eq!(
        hook["namespace"].as_str(),
        svc["metadata"]["namespace"].as_str()
    );
    let svc_port = &svc["spec"]["ports"][0];
    assert_eq!(hook["port"].as_i64(), svc_port["port"].as_i64());
    // Service → the container's named port → the controller's --listen.
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    let port = container["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == svc_port["targetPort"].as_str())
        .expect("the Service's targetPort names a container port");
    let args: Vec<&str> = container["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "autoscale");
    let listen = args[args.iter().position(|a| *a == "--listen").unwrap() + 1];
    assert_eq!(
        listen.rsplit(':').next().unwrap().parse::<i64>().ok(),
        port["containerPort"].as_i64()
    );
    assert_flags_exist("autoscale", &args[1..], "autoscaler.yaml");
    assert_eq!(
        deploy["spec"]["selector"]["matchLabels"]["app"].as_str(),
        svc["spec"]["selector"]["app"].as_str()
    );
    let probe = container["readinessProbe"]["httpGet"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(probe, "/health");
    // The policy the ConfigMap carries names this Fleet.
    let policy = PolicyFile::parse_toml(&read("deploy/agones/policy.toml"))
        .expect("deploy/agones/policy.toml validates");
    assert!(policy.regions.values().any(|p| p.provider
        == ProviderPolicy::Agones {
            fleet: fleet_name.to_owned()
        }));
    let mounted = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(
        args[args.iter().position(|a| *a == "--policy").unwrap() + 1],
        format!("{mounted}/policy.toml")
    );
    // The game server: its container port is the one the entrypoint
    // listens on, and every flag the entrypoint passes exists.
    let gs = &fleet["spec"]["template"]["spec"];
    let game_port = gs["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some("game"))
        .expect("a port named game");
    let entry = read("deploy/agones/entrypoint.sh");
    assert!(entry.contains(&format!(
        "--listen 0.0.0.0:{}",
        game_port["containerPort"].as_i64().unwrap()
    )));
    assert!(
        entry.contains("select(.name == \"game\")"),
        "the entrypoint reads the port named game"
    );
    let serve = entry
        .split("exec /usr/local/bin/shardline serve")
        .nth(1)
        .expect("the entrypoint execs serve");
    let words: Vec<&str> = serve.split_whitespace().collect();
    assert_flags_exist("serve", &words, "entrypoint.sh");
    let node = &gs["template"]["spec"]["containers"][0];
    assert_eq!(
        node["command"][0].as_str(),
        Some("/usr/local/bin/shardline-agones")
    );
    let dockerfile = read("deploy/agones/Dockerfile");
    assert!(dockerfile.contains("COPY deploy/agones/entrypoint.sh /usr/local/bin/shardline-agones"));
    assert!(dockerfile.contains("EXPOSE 9000 9100"));
}

#[test]
fn the_systemd_unit_starts_a_node_named_by_the_instance() {
    let unit = read("deploy/systemd/shardline@.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(&words[..2], ["/usr/local/bin/shardline", "serve"]);
    assert_flags_exist("serve", &words[2..], "shardline@.service");
    assert!(
        exec.contains("--node-id %i"),
        "the unit's instance name is the node id the controller chose"
    );
    assert!(
        unit.contains("KillSignal=SIGTERM"),
        "a graceful stop hands the node's state to its region"
    );
    // The example in its header is a policy the autoscaler accepts.
    let example: String = unit
        .lines()
        .skip_while(|l| !l.contains("[regions.eu.provider]"))
        .take_while(|l| l.starts_with('#') && !l.trim_start_matches('#').trim().is_empty())
        .map(|l| format!("{}\n", l.trim_start_matches('#').trim()))
        .collect();
    let p = PolicyFile::parse_toml(&format!("[regions.eu]\nmax_nodes = 4\n{example}"))
        .expect("the unit's example policy validates");
    assert!(
        matches!(&p.regions["eu"].provider, ProviderPolicy::Process { scale_up, .. } if scale_up == "systemctl start shardline@{node}")
    );
}
