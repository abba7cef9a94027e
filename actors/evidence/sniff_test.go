package evidence

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

var sniffRef = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

const (
	sampleJSON = `{
  "server": {"port": 8080, "tls": true},
  "upstreams": ["a:80", "b:80"],
  "timeout_ms": 1500
}`
	sampleYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  labels:
    app: checkout
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: checkout
          image: registry.local/checkout:1.4.2
          ports:
            - containerPort: 8080
`
	sampleNginx = `user nginx;
worker_processes auto;

events {
    worker_connections 1024;
}

http {
    upstream backend {
        server 10.0.0.1:8080;
        server 10.0.0.2:8080;
    }
    server {
        listen 80;
        server_name example.com;
        location / {
            proxy_pass http://backend;
            proxy_read_timeout 30s;
        }
    }
}
`
	sampleINI = `; database settings
[database]
host = db.internal
port = 5432

[cache]
enabled = true
ttl = 300
`
	sampleEnv = `DATABASE_URL=postgres://db.internal/app
REDIS_URL=redis://cache:6379
export LOG_LEVEL=debug
FEATURE_X=1
`
	sampleCSV = `timestamp,host,cpu_pct,mem_mb,p99_ms
2024-03-01T14:00:00Z,web-1,41.5,2048,120
2024-03-01T14:01:00Z,web-1,44.0,2050,135
2024-03-01T14:02:00Z,web-1,97.2,2301,2200
2024-03-01T14:03:00Z,web-1,98.9,2310,2950
`
	sampleProm = `# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2.3945216e+07
go_goroutines 42
`
	sampleLog4j = `2024-03-01 14:02:11,123 INFO  [main] com.example.App - Starting checkout service v1.4.2
2024-03-01 14:02:12,456 WARN  [pool-1] com.example.Db - Slow query took 1200 ms
2024-03-01 14:02:13,789 ERROR [pool-2] com.example.Db - Connection refused
java.net.ConnectException: Connection refused
	at java.base/sun.nio.ch.Net.connect0(Native Method)
	at java.base/sun.nio.ch.Net.connect(Net.java:579)
	at com.example.Db.open(Db.java:42)
Caused by: java.io.IOException: timeout
	at com.example.Db.open(Db.java:40)
2024-03-01 14:02:14,001 INFO  [main] com.example.App - Retrying
`
	sampleSyslog = `Mar  1 14:02:11 web-1 sshd[24200]: Invalid user admin from 173.234.31.186
Mar  1 14:02:11 web-1 sshd[24200]: input_userauth_request: invalid user admin [preauth]
Mar  1 14:02:12 web-1 kernel: [12345.678] eth0: link down
Mar  1 14:02:15 web-1 systemd[1]: Started Session 42 of user root.
`
	sampleKlog = `I0301 14:02:11.123456       1 controller.go:123] Starting controller
W0301 14:02:12.000001       1 reflector.go:324] watch of *v1.Pod ended with: too old resource version
E0301 14:02:13.500000       1 controller.go:200] error syncing "default/checkout": timeout
I0301 14:02:14.000000       1 controller.go:150] Synced
`
	sampleJSONLines = `{"ts":"2024-03-01T14:02:11Z","level":"info","msg":"listening","port":8080}
{"ts":"2024-03-01T14:02:12Z","level":"error","msg":"upstream timeout","upstream":"db"}
{"ts":"2024-03-01T14:02:13Z","level":"warn","msg":"retrying","attempt":2}
`
	sampleGo = `package main

import (
	"fmt"
	"os"
)

// main prints a greeting.
func main() {
	name := os.Getenv("USER")
	if name == "" {
		name = "world"
	}
	fmt.Println("hello", name)
}
`
	samplePython = `import os
import sys


class Checker:
    def __init__(self, url):
        self.url = url

    def run(self):
        try:
            return os.system("curl -sf " + self.url)
        except OSError as exc:
            print(exc, file=sys.stderr)
            return 1
`
	sampleProse = `The checkout service started failing shortly after the deploy this afternoon.
Customers reported that the payment page hung for about thirty seconds and then
showed a generic error. We rolled back at around three, and the errors stopped.
Nobody changed the database, but the connection pool size was lowered last week.
`
	sampleMarkdown = `# Incident notes

Some context about the outage and what we saw.

- payments were slow
- the database looked fine
- restarts did not help

## Next steps

Check the pool size.
`
)

func TestSniff(t *testing.T) {
	hdfs := readPrefix(t, hdfsSample)
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 64)...)
	gz := append([]byte{0x1f, 0x8b, 0x08, 0x00}, bytes.Repeat([]byte{1, 2, 3}, 50)...)
	rnd := make([]byte, 4096)
	for i := range rnd {
		rnd[i] = byte(rand.N(256))
	}
	tests := []struct {
		name, file string
		body       []byte
		want       Kind
		format     string
	}{
		{"json", "settings.txt", []byte(sampleJSON), KindConfiguration, "json"},
		{"json array", "x", []byte(`[{"a":1},{"b":[1,2,3]}]`), KindConfiguration, "json"},
		{"yaml", "deploy", []byte(sampleYAML), KindConfiguration, ""},
		{"nginx", "nginx.txt", []byte(sampleNginx), KindConfiguration, ""},
		{"ini", "app", []byte(sampleINI), KindConfiguration, ""},
		{"env", "env", []byte(sampleEnv), KindConfiguration, ""},
		{"toml", "cfg", []byte("[server]\nhost = \"0.0.0.0\"\nport = 8080\n\n[[upstream]]\nname = \"db\"\n"), KindConfiguration, ""},
		{"bracketed timestamps", "out", []byte("[2024-03-01 14:02:11] ERROR boom\n[2024-03-01 14:02:12] INFO ok\n"), KindLogs, ""},
		{"bracketed levels", "build", []byte("[INFO] Scanning for projects...\n[WARNING] deprecated\n[ERROR] failed\n"), KindLogs, ""},
		{"csv metrics", "data.txt", []byte(sampleCSV), KindMetrics, "csv"},
		{"prometheus", "scrape", []byte(sampleProm), KindMetrics, "prometheus"},
		{"log4j", "out.txt", []byte(sampleLog4j), KindLogs, ""},
		{"syslog", "messages", []byte(sampleSyslog), KindLogs, ""},
		{"klog", "controller", []byte(sampleKlog), KindLogs, ""},
		{"json lines logs", "app.json", []byte(sampleJSONLines), KindLogs, "ndjson"},
		{"hdfs", "hdfs", hdfs, KindLogs, ""},
		{"go", "main.txt", []byte(sampleGo), KindCode, ""},
		{"python", "check", []byte(samplePython), KindCode, ""},
		{"shell", "run", []byte("#!/bin/sh\nset -e\necho hi\n"), KindCode, ""},
		{"prose", "notes", []byte(sampleProse), KindText, ""},
		{"markdown", "notes.md", []byte(sampleMarkdown), KindText, ""},
		{"png", "screenshot.log", png, KindImage, ""},
		{"gzip named log", "app.log", gz, KindBinary, ""},
		{"random named log", "app.log", rnd, KindBinary, ""},
		{"nul named log", "app.log", []byte("2024-03-01 ERROR x\n\x00\x00\x00 y\n"), KindBinary, ""},
		{"prose named log", "app.log", []byte(sampleProse), KindText, ""},
		{"prose named yaml", "app.yaml", []byte(sampleProse), KindText, ""},
		{"go named json", "main.json", []byte(sampleGo), KindCode, ""},
		{"whitespace", "x", []byte(" \n\n\t\n"), KindText, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sniff(tt.body, true, tt.file, sniffRef)
			if got.kind != tt.want || got.format != tt.format {
				t.Fatalf("sniff = %+v, want kind %s format %q", got, tt.want, tt.format)
			}
			if got.contentType == "" {
				t.Fatal("no content type")
			}
		})
	}
}

// TestSniffTieBreak: content that leans towards logs without deciding is
// logs when named .log, text otherwise; the name never wins alone.
func TestSniffTieBreak(t *testing.T) {
	var b strings.Builder
	for i := range 10 {
		if i%3 == 0 {
			b.WriteString("2024-03-01 14:02:1" + string(rune('0'+i)) + " something happened\n")
		} else {
			b.WriteString("and then another thing happened, as one does\n")
		}
	}
	body := []byte(b.String())
	if got := sniff(body, true, "x.log", sniffRef).kind; got != KindLogs {
		t.Errorf("named .log: %s, want logs", got)
	}
	if got := sniff(body, true, "x.txt", sniffRef).kind; got != KindText {
		t.Errorf("named .txt: %s, want text", got)
	}
}

// TestSniffTruncatedPrefix: a JSON document longer than the prefix is
// still configuration, and a rune cut at the prefix's end is not binary.
func TestSniffTruncatedPrefix(t *testing.T) {
	doc := "{\"items\": [" + strings.Repeat(`{"name": "пример", "value": 12345},`, 400)
	p := []byte(doc)[:sniffLen]
	if got := sniff(p, false, "x", sniffRef); got.kind != KindConfiguration {
		t.Fatalf("truncated json: %+v", got)
	}
	text := strings.Repeat("Описание проблемы с базой данных и пулом соединений. ", 300)
	p = []byte(text)[:sniffLen-1] // likely mid-rune
	if got := sniff(p, false, "x", sniffRef); got.kind != KindText {
		t.Fatalf("truncated cyrillic prose: %+v", got)
	}
}

func readPrefix(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("sample not available: %v", err)
	}
	b = b[:min(len(b), sniffLen)]
	return b[:bytes.LastIndexByte(b, '\n')+1]
}
