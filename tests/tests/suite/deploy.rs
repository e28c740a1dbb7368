//! The files that deploy xdpctl are checked before anyone ships them: the
//! Kubernetes manifests in `deploy/` against the API's schemas
//! (kubernetes-validate, strict) and against the rules the API server adds
//! to those schemas; the policies in the ConfigMap and in `contrib/` with
//! xdpctl's own parser; the agent's command lines in the systemd unit, the
//! Containerfile and the DaemonSet with xdpctl's own argument parser; and
//! the unit with `systemd-analyze verify`.
//!
//! Offline: no cluster and no container runtime. kubernetes-validate and
//! the YAML parser used here (its PyYAML) live in the venv that
//! `scripts/deps.sh` makes in the target directory. A test whose tool is
//! missing says `skipping: <reason>`, and fails under `CI=true`.

use std::{
    collections::BTreeSet,
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;
use xdpctl_tests::{Bpffs, require_privileges, xdpctl, xdpctl_bin};

/// The Kubernetes versions the manifests are for: 1.30 is the first with
/// `securityContext.appArmorProfile`, 1.37 the newest the kubernetes-validate
/// pinned in `scripts/deps.sh` knows.
const KUBERNETES: [&str; 2] = ["1.30.0", "1.37.0"];

/// The capabilities the agent needs, and all it gets.
const CAPABILITIES: [&str; 4] = ["BPF", "PERFMON", "NET_ADMIN", "SYS_ADMIN"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Says why `test` cannot run; panics instead under `CI=true`.
fn cannot_run(test: &str, reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {reason}; under CI=true this test must run");
    }
    eprintln!("skipping: {test}: {reason}");
}

/// The venv with kubernetes-validate and PyYAML.
struct Venv(PathBuf);

impl Venv {
    /// `$XDPCTL_VENV`, else `venv/` in the target directory that holds this
    /// test (where `scripts/deps.sh` makes it).
    fn find(test: &str) -> Option<Self> {
        let found = match std::env::var_os("XDPCTL_VENV") {
            Some(dir) => Some(PathBuf::from(dir)),
            None => std::env::current_exe()
                .expect("current_exe")
                .ancestors()
                .map(|d| d.join("venv"))
                .find(|v| v.join("bin/kubernetes-validate").is_file()),
        };
        match found {
            Some(dir) if dir.join("bin/kubernetes-validate").is_file() => Some(Venv(dir)),
            _ => {
                cannot_run(
                    test,
                    "kubernetes-validate is not installed (scripts/deps.sh installs it in \
                     target/venv; XDPCTL_VENV names another venv)",
                );
                None
            }
        }
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.0.join("bin").join(name)
    }

    /// Every document in `text` (YAML, from `what`), as JSON.
    fn yaml(&self, what: &str, text: &str) -> Vec<Value> {
        // NB: PyYAML reads YAML 1.1, xdpctl's parser YAML 1.2; they differ
        // only on forms these files do not use (`yes`, `1:20`, `0777`).
        let script = "import json, sys, yaml\n\
                      docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]\n\
                      json.dump(docs, sys.stdout, default=str)";
        let mut py = Command::new(self.bin("python3"))
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin("python3").display()));
        py.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = py.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{what} is not valid YAML:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn yaml_file(&self, rel: &str) -> Vec<Value> {
        self.yaml(rel, &read(rel))
    }

    fn yaml_path(&self, path: &Path) -> Vec<Value> {
        let text =
            fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        self.yaml(&path.display().to_string(), &text)
    }
}

/// The manifests in `deploy/` (relative paths), kustomization.yaml aside.
fn manifests() -> Vec<String> {
    let mut files: Vec<String> = fs::read_dir(repo().join("deploy"))
        .expect("reading deploy/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .map(|n| format!("deploy/{n}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/");
    files
}

/// The one document of `kind` among `docs`.
fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} in deploy/, found {}",
        found.len()
    );
    found[0]
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether every label of `selector` is on `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels[k] == *v))
}

/// The policy in the ConfigMap.
fn configmap_policy(venv: &Venv) -> String {
    let docs = venv.yaml_file("deploy/configmap.yaml");
    one(&docs, "ConfigMap")["data"]["policy.yaml"]
        .as_str()
        .expect("deploy/configmap.yaml has no data key policy.yaml")
        .to_owned()
}

#[test]
fn manifests_match_the_kubernetes_schemas() {
    let Some(venv) = Venv::find("manifests_match_the_kubernetes_schemas") else {
        return;
    };
    for file in manifests() {
        let docs = venv.yaml_file(&file).len();
        let mut cmd = Command::new(venv.bin("kubernetes-validate"));
        cmd.arg("--strict");
        for k in KUBERNETES {
            cmd.args(["--kubernetes-version", k]);
        }
        let out = cmd
            .arg(repo().join(&file))
            .output()
            .expect("running kubernetes-validate");
        let stdout = String::from_utf8_lossy(&out.stdout);
        // NB: a kind it has no schema for is only a WARN with exit status
        // 0, so every line must be a pass.
        let passed = stdout.lines().filter(|l| l.starts_with("INFO ")).count();
        assert!(
            out.status.success()
                && passed == docs * KUBERNETES.len()
                && stdout.lines().all(|l| l.starts_with("INFO ")),
            "kubernetes-validate --strict on {file}: expected {} passes ({docs} documents, \
             Kubernetes {KUBERNETES:?}), got {passed}, exit status {}\n{stdout}{}",
            docs * KUBERNETES.len(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What the schemas cannot say and the API server checks (or the pods
/// would need to work): names that refer to each other, mount propagation.
#[test]
fn manifests_agree_with_each_other_and_the_api_rules() {
    let Some(venv) = Venv::find("manifests_agree_with_each_other_and_the_api_rules") else {
        return;
    };
    let files = manifests();
    let docs: Vec<Value> = files.iter().flat_map(|f| venv.yaml_file(f)).collect();

    // kustomization.yaml lists every manifest, and nothing else.
    let kustomization = venv.yaml_file("deploy/kustomization.yaml");
    let listed: BTreeSet<String> = strings(&kustomization[0]["resources"])
        .iter()
        .map(|r| format!("deploy/{r}"))
        .collect();
    let present: BTreeSet<String> = files.iter().cloned().collect();
    assert_eq!(
        listed, present,
        "deploy/kustomization.yaml resources vs the files in deploy/"
    );

    let namespace = one(&docs, "Namespace")["metadata"]["name"].clone();
    for d in docs.iter().filter(|d| d["kind"] != "Namespace") {
        assert_eq!(
            d["metadata"]["namespace"], namespace,
            "{} {} is not in the Namespace of namespace.yaml",
            d["kind"], d["metadata"]["name"]
        );
    }

    let ds = one(&docs, "DaemonSet");
    let template = &ds["spec"]["template"];
    let pod_labels = &template["metadata"]["labels"];
    assert!(
        selects(&ds["spec"]["selector"]["matchLabels"], pod_labels),
        "the DaemonSet's selector does not match its pod template's labels (the API refuses it)"
    );
    let pod = &template["spec"];
    assert_eq!(
        pod["hostNetwork"], true,
        "XDP attaches to the node's devices"
    );
    assert_eq!(
        ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
        1
    );

    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "one container, the agent");
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(
        sc["privileged"], false,
        "the agent runs with capabilities, not privileged"
    );
    assert_eq!(strings(&sc["capabilities"]["add"]), CAPABILITIES);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);

    // Ports: named, and on the host network hostPort is containerPort.
    let ports = c["ports"].as_array().expect("container ports");
    let metrics = ports
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a container port named metrics");
    let metrics_port = metrics["containerPort"].as_u64().unwrap();
    for p in ports {
        assert!(
            p["hostPort"].is_null() || p["hostPort"] == p["containerPort"],
            "hostNetwork: hostPort must equal containerPort: {p}"
        );
    }
    let names_a_port = |port: &Value| {
        ports
            .iter()
            .any(|p| p["name"] == *port || p["containerPort"] == *port)
    };
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &c[probe]["httpGet"];
        assert!(
            names_a_port(&get["port"]),
            "{probe} port {} is not a container port",
            get["port"]
        );
    }
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    let annotations = &template["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], metrics_port.to_string());

    let args = strings(&c["args"]);
    let after = |flag: &str| {
        args.iter()
            .position(|a| *a == flag)
            .and_then(|i| args.get(i + 1))
            .copied()
            .unwrap_or_else(|| panic!("the agent's args have no {flag}: {args:?}"))
    };
    assert!(
        after("--listen").ends_with(&format!(":{metrics_port}")),
        "--listen {} is not the metrics port {metrics_port}",
        after("--listen")
    );

    // Volumes: every mount names a volume; propagation is one Kubernetes
    // knows, and Bidirectional only in a privileged container (the API
    // refuses it otherwise).
    let volumes = pod["volumes"].as_array().expect("volumes");
    let volume = |name: &Value| {
        volumes
            .iter()
            .find(|v| v["name"] == *name)
            .unwrap_or_else(|| panic!("volumeMount {name} names no volume"))
    };
    for m in c["volumeMounts"].as_array().expect("volumeMounts") {
        volume(&m["name"]);
        let propagation = m["mountPropagation"].as_str().unwrap_or("None");
        assert!(
            ["None", "HostToContainer", "Bidirectional"].contains(&propagation),
            "mountPropagation {propagation} of {} is not a Kubernetes value",
            m["mountPath"]
        );
        assert!(
            propagation != "Bidirectional" || sc["privileged"] == true,
            "{}: Bidirectional mount propagation needs privileged: true",
            m["mountPath"]
        );
    }
    let mount_of = |host_path: &str| {
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| volume(&m["name"])["hostPath"]["path"] == host_path)
            .unwrap_or_else(|| panic!("no hostPath volume for {host_path}"))
    };
    for host_path in ["/sys/fs/bpf", "/run/netns"] {
        let m = mount_of(host_path);
        assert_eq!(
            m["mountPath"], host_path,
            "{host_path} is where xdpctl looks"
        );
        assert_eq!(
            m["mountPropagation"], "HostToContainer",
            "{host_path}: the pod must see what the host mounts there"
        );
    }

    // The policy: the ConfigMap's key policy.yaml, where --policy says,
    // mounted as a directory (a subPath mount is never updated).
    let cm = one(&docs, "ConfigMap");
    assert!(
        cm["data"]["policy.yaml"].is_string(),
        "the ConfigMap has no key policy.yaml"
    );
    let cm_volume = volumes
        .iter()
        .find(|v| v["configMap"]["name"] == cm["metadata"]["name"])
        .expect("no volume of the ConfigMap");
    let cm_mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == cm_volume["name"])
        .expect("the ConfigMap's volume is not mounted");
    assert!(
        cm_mount["subPath"].is_null(),
        "the kubelet never updates a subPath mount"
    );
    assert_eq!(
        format!("{}/policy.yaml", cm_mount["mountPath"].as_str().unwrap()),
        after("--policy"),
        "--policy is not the ConfigMap's policy.yaml"
    );

    // The Service finds the pods and their metrics port.
    let svc = one(&docs, "Service");
    assert!(
        selects(&svc["spec"]["selector"], pod_labels),
        "the Service's selector does not match the DaemonSet's pods"
    );
    for p in svc["spec"]["ports"].as_array().expect("Service ports") {
        assert!(
            names_a_port(&p["targetPort"]),
            "Service targetPort {} is not a container port",
            p["targetPort"]
        );
    }
}

#[test]
fn policies_are_yaml_of_version_1() {
    let Some(venv) = Venv::find("policies_are_yaml_of_version_1") else {
        return;
    };
    for (what, text) in [
        ("deploy/configmap.yaml policy.yaml", configmap_policy(&venv)),
        (
            "contrib/policy.example.yaml",
            read("contrib/policy.example.yaml"),
        ),
    ] {
        let docs = venv.yaml(what, &text);
        assert_eq!(docs.len(), 1, "{what}: expected one YAML document");
        assert!(docs[0].is_object(), "{what}: not a mapping: {}", docs[0]);
        assert_eq!(docs[0]["version"], 1, "{what}: version");
    }
}

/// xdpctl's own parser takes both policies, and plans what they say.
#[test]
fn xdpctl_plans_the_policies() {
    require_privileges!();
    let Some(venv) = Venv::find("xdpctl_plans_the_policies") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let from_configmap = dir.path().join("deploy-configmap-policy.yaml");
    fs::write(&from_configmap, configmap_policy(&venv)).unwrap();
    for file in [from_configmap, repo().join("contrib/policy.example.yaml")] {
        let policy = &venv.yaml_path(&file)[0];
        let fs = Bpffs::new();
        let before = fs.snapshot();
        let path = file.to_str().unwrap();
        let plan = xdpctl(&fs, ["-j", "apply", "--dry-run", "-f", path])
            .ok()
            .json();
        assert_eq!(plan["load"], "load", "{path}: {plan}");
        assert_eq!(plan["applied"], false, "{path}: {plan}");
        let attach: Vec<&Value> = plan["attach"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["name"])
            .collect();
        let devices: Vec<&Value> = policy["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["name"])
            .collect();
        assert_eq!(
            attach, devices,
            "{path}: the devices planned vs the policy's"
        );
        assert_eq!(fs.snapshot(), before, "{path}: --dry-run changed the bpffs");
    }
}

/// The agent's command lines in the unit, the image and the DaemonSet are
/// ones xdpctl accepts (`--help` last: everything before it is parsed).
#[test]
fn the_agent_command_lines_parse() {
    let Some(venv) = Venv::find("the_agent_command_lines_parse") else {
        return;
    };
    let unit = read("contrib/xdpctl-agent.service");
    let exec: Vec<&str> = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has no ExecStart=")
        .split_whitespace()
        .collect();

    let containerfile = read("Containerfile");
    let instruction = |name: &str| -> Vec<String> {
        let line = containerfile
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("Containerfile has no {name}"));
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("Containerfile {name} is not a JSON array ({e}): {line}"))
    };
    let entrypoint = instruction("ENTRYPOINT");
    let cmd = instruction("CMD");
    let expose = containerfile
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("Containerfile has no EXPOSE");
    assert!(
        cmd.last()
            .unwrap()
            .ends_with(&format!(":{}", expose.trim())),
        "CMD listens elsewhere than EXPOSE {expose}: {cmd:?}"
    );

    let ds = venv.yaml_file("deploy/daemonset.yaml");
    let ds_args: Vec<String> =
        strings(&one(&ds, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]["args"])
            .into_iter()
            .map(str::to_owned)
            .collect();

    let lines: [(&str, Vec<String>); 3] = [
        (
            "contrib/xdpctl-agent.service",
            exec.iter().map(|s| s.to_string()).collect(),
        ),
        ("Containerfile", [entrypoint.clone(), cmd].concat()),
        ("deploy/daemonset.yaml", [entrypoint, ds_args].concat()),
    ];
    for (what, line) in lines {
        assert_eq!(
            line[..2],
            ["/usr/local/bin/xdpctl", "agent"],
            "{what} does not run /usr/local/bin/xdpctl agent: {line:?}"
        );
        let out = Command::new(xdpctl_bin())
            .args(&line[1..])
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: xdpctl refuses {line:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `systemd-analyze verify` on the unit, the binary under test standing in
/// for /usr/local/bin/xdpctl (verify checks that ExecStart= is executable).
#[test]
fn systemd_unit_verifies() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        cannot_run(
            "systemd_unit_verifies",
            "systemd-analyze is missing (scripts/deps.sh installs systemd)",
        );
        return;
    }
    let unit = read("contrib/xdpctl-agent.service");
    assert!(
        unit.contains("ExecStart=/usr/local/bin/xdpctl "),
        "ExecStart= is not /usr/local/bin/xdpctl"
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("xdpctl-agent.service");
    fs::write(
        &copy,
        unit.replace("/usr/local/bin/xdpctl", xdpctl_bin().to_str().unwrap()),
    )
    .unwrap();
    // --man=no: the man page is not installed here.
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // NB: verify exits 0 on an unknown key or a bad value ("..., ignoring"),
    // so anything it says is a failure.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify contrib/xdpctl-agent.service: {}\n{stderr}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}
