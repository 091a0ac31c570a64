//! A load balancer for the replica tests: Debian's nginx (`apt-get install nginx`; installed
//! by `scripts/test`), round robin over several `cairn serve` processes, HTTP and WebSocket
//! upgrade, request and response bodies streamed (not buffered), a replica that refuses
//! connections skipped for the next. It listens on 127.0.0.1 only, runs in the foreground
//! with its own configuration, logs and temporary files under a temp directory, and is
//! stopped when the guard drops (and by a watchdog if the test process dies).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx in front of some replicas.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    /// `http://127.0.0.1:<port>/`.
    pub url: String,
    /// Its directory (configuration, logs).
    pub dir: PathBuf,
}

impl Nginx {
    /// Starts nginx balancing over `upstreams` (base URLs such as `http://127.0.0.1:4000/`).
    pub fn start(upstreams: &[&str]) -> Self {
        let bin = nginx();
        let dir = crate::temp_dir("cairn-nginx");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free port on 127.0.0.1");
        let servers: String = upstreams
            .iter()
            .map(|url| {
                let host = url
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned();
                assert!(host.starts_with("127."), "upstreams are on loopback: {url}");
                format!("        server {host} max_fails=1 fail_timeout=2s;\n")
            })
            .collect();
        let d = dir.display();
        let config = format!(
            r#"worker_processes 1;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 4096; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 0;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream cairn {{
{servers}        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://cairn;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout non_idempotent;
        }}
    }}
}}
"#
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).expect("write nginx.conf");
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("create nginx's log");
        let child = Command::new(&bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        crate::watchdog::after_exit(&format!("kill -9 {} 2>/dev/null", child.id()));
        let mut nginx = Self {
            child,
            url: format!("http://127.0.0.1:{port}/"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!(
                    "nginx exited at start ({status}):\n{}",
                    std::fs::read_to_string(nginx.dir.join("stderr.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    /// nginx's access log so far.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's nginx binary.
fn nginx() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if std::path::Path::new(candidate).is_file() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "nginx is needed for the load-balancer tests: install it with `apt-get install nginx` \
         (./scripts/test does)"
    )
}
