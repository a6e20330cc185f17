package main

import (
	"testing"
	"time"
)

// dnsperfVerbose is dnsperf 2.10.0's output with -v (two queries).
const dnsperfVerbose = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -p 5300 -d /tmp/q -n 1 -v
[Status] Sending queries (to 127.0.0.1:5300)
[Status] Started at: Sat Dec  5 23:59:12 2026
[Status] Stopping after 1 run through file
> SERVFAIL a.example A 0.003768
> NOERROR b.example A 0.002387
[Status] Testing complete (end of file)

Statistics:

  Queries sent:         2
  Queries completed:    2 (100.00%)
  Queries lost:         0 (0.00%)

  Response codes:       SERVFAIL 1 (50.00%), NOERROR 1 (50.00%)
  Average packet size:  request 27, response 27
  Run time (s):         0.005659
  Queries per second:   353.419332

  Average Latency (s):  0.003077 (min 0.002387, max 0.003768)
  Latency StdDev (s):   0.000977
`

func TestParseDNSPerf(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    perfResult
		wantErr bool
	}{
		{
			name: "verbose",
			out:  dnsperfVerbose,
			want: perfResult{sent: 2, completed: 2, qps: 353.419332, avg: 3077 * time.Microsecond,
				codes: "SERVFAIL 1 (50.00%), NOERROR 1 (50.00%)",
				p50:   3768 * time.Microsecond, p99: 3768 * time.Microsecond, max: 3768 * time.Microsecond},
		},
		{
			name: "summary only",
			out: `Statistics:
  Queries sent:         500
  Queries completed:    490 (98.00%)
  Queries lost:         10 (2.00%)
  Queries per second:   49348.5
  Average Latency (s):  0.001607 (min 0.000020, max 0.100000)
`,
			want: perfResult{sent: 500, completed: 490, lost: 10, qps: 49348.5, avg: 1607 * time.Microsecond},
		},
		{name: "no summary", out: "[Fatal] unable to open file\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDNSPerf([]byte(tt.out))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
