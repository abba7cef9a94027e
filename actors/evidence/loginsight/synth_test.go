package loginsight

import (
	"bufio"
	"io"
	"math/rand/v2"
	"strconv"
	"time"
)

// synth writes a realistic mixed log: runs of lines in one layout (log4j,
// syslog sshd, nginx access, JSON, klog), each with its own templates and
// variables, a level mix with Java stack traces after some errors, and a
// planted one-minute burst of database errors every burstEvery minutes.
type synth struct {
	rng        *rand.Rand
	clock      time.Time
	gap        time.Duration // mean gap between records
	runLen     int           // records per layout run
	burstEvery int           // minutes between planted bursts (0: none)
	burstLines int           // extra records in a burst minute
	noise      float64       // share of one-off lines of random words (worst case for the miner)

	lines   int64
	planted []time.Time // start minute of each planted burst
	buf     []byte
}

func newSynth(seed uint64) *synth {
	return &synth{
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		clock:      time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
		gap:        600 * time.Millisecond,
		runLen:     5000,
		burstEvery: 90,
		burstLines: 2000,
	}
}

var (
	synthUsers = []string{"root", "admin", "alice", "bob", "deploy", "git", "postgres", "www-data", "oracle", "test"}
	synthPaths = []string{"/api/v1/users", "/api/v1/orders", "/healthz", "/static/app.js", "/login", "/api/v2/search"}
	synthComps = []string{"c.e.OrderService", "c.e.PaymentGateway", "c.e.db.Pool", "c.e.http.Server", "c.e.cache.Redis"}
)

// writeTo writes about size bytes of log to w.
func (s *synth) writeTo(w io.Writer, size int64) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	var written int64
	layout := 0
	nextBurst := s.clock.Add(time.Duration(s.burstEvery) * time.Minute).Truncate(time.Minute)
	for written < size {
		if s.lines%int64(s.runLen) == 0 && s.lines > 0 {
			layout = (layout + 1) % 5
		}
		s.clock = s.clock.Add(time.Duration(s.rng.Int64N(int64(2 * s.gap))))
		if s.burstEvery > 0 && !s.clock.Before(nextBurst) {
			s.planted = append(s.planted, nextBurst)
			for i := range s.burstLines {
				ts := nextBurst.Add(time.Duration(i) * time.Minute / time.Duration(s.burstLines+1))
				s.buf = s.burstLine(s.buf[:0], ts, layout)
				n, err := bw.Write(s.buf)
				if err != nil {
					return err
				}
				written += int64(n)
				s.lines++
			}
			s.clock = nextBurst.Add(time.Minute)
			nextBurst = nextBurst.Add(time.Duration(s.burstEvery) * time.Minute)
		}
		s.buf = s.record(s.buf[:0], layout)
		n, err := bw.Write(s.buf)
		if err != nil {
			return err
		}
		written += int64(n)
	}
	return bw.Flush()
}

func (s *synth) pick(xs []string) string { return xs[s.rng.IntN(len(xs))] }

func (s *synth) ip(b []byte) []byte {
	r := s.rng.IntN(20000) // a pool of addresses, some frequent
	if s.rng.IntN(4) == 0 {
		r %= 50
	}
	b = strconv.AppendInt(b, 10+int64(r>>16), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(r>>8&255), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(r&255), 10)
	b = append(b, '.')
	return strconv.AppendInt(b, int64(1+r%250), 10)
}

func (s *synth) level() string {
	switch r := s.rng.IntN(100); {
	case r < 3:
		return "ERROR"
	case r < 10:
		return "WARN"
	case r < 15:
		return "DEBUG"
	default:
		return "INFO"
	}
}

// record appends one record (and maybe its stack trace) in the layout.
func (s *synth) record(b []byte, layout int) []byte {
	s.lines++
	t := s.clock
	if s.noise > 0 && s.rng.Float64() < s.noise {
		b = t.AppendFormat(b, "2006-01-02 15:04:05,000")
		b = append(b, " WARN"...)
		for range 3 + s.rng.IntN(10) {
			b = append(b, ' ')
			for range 2 + s.rng.IntN(8) {
				b = append(b, byte('a'+s.rng.IntN(26)))
			}
		}
		return append(b, '\n')
	}
	switch layout {
	case 0: // log4j
		lvl := s.level()
		b = t.AppendFormat(b, "2006-01-02 15:04:05,000")
		b = append(b, ' ')
		b = append(b, lvl...)
		b = append(b, " ["...)
		b = append(b, "pool-"...)
		b = strconv.AppendInt(b, int64(s.rng.IntN(8)), 10)
		b = append(b, "-thread-"...)
		b = strconv.AppendInt(b, int64(s.rng.IntN(64)), 10)
		b = append(b, "] "...)
		b = append(b, s.pick(synthComps)...)
		b = append(b, " - "...)
		switch lvl {
		case "ERROR":
			b = append(b, "Failed to process order "...)
			b = strconv.AppendInt(b, s.rng.Int64N(1e9), 10)
			b = append(b, " for customer "...)
			b = append(b, s.pick(synthUsers)...)
			b = append(b, ": java.net.SocketTimeoutException: Read timed out\n"...)
			if s.rng.IntN(10) == 0 {
				for i := range 6 {
					b = append(b, "\tat com.example.OrderService.process(OrderService.java:"...)
					b = strconv.AppendInt(b, int64(100+i), 10)
					b = append(b, ")\n"...)
				}
				s.lines += 6
			}
			return b
		case "WARN":
			b = append(b, "Slow query took "...)
			b = strconv.AppendInt(b, int64(500+s.rng.IntN(5000)), 10)
			b = append(b, "ms on table orders (rows="...)
			b = strconv.AppendInt(b, int64(s.rng.IntN(100000)), 10)
			b = append(b, ")\n"...)
			return b
		}
		switch s.rng.IntN(4) {
		case 0:
			b = append(b, "Processed order "...)
			b = strconv.AppendInt(b, s.rng.Int64N(1e9), 10)
			b = append(b, " in "...)
			b = strconv.AppendInt(b, int64(s.rng.IntN(900)), 10)
			b = append(b, "ms\n"...)
		case 1:
			b = append(b, "Cache hit ratio "...)
			b = strconv.AppendFloat(b, s.rng.Float64(), 'f', 3, 64)
			b = append(b, " for region eu-west-"...)
			b = strconv.AppendInt(b, int64(1+s.rng.IntN(3)), 10)
			b = append(b, '\n')
		case 2:
			b = append(b, "User "...)
			b = append(b, s.pick(synthUsers)...)
			b = append(b, " logged in from "...)
			b = s.ip(b)
			b = append(b, '\n')
		default:
			b = append(b, "Request id="...)
			b = appendHex(b, s.rng.Uint64())
			b = append(b, " completed status=200 bytes="...)
			b = strconv.AppendInt(b, int64(s.rng.IntN(1<<20)), 10)
			b = append(b, '\n')
		}
	case 1: // syslog sshd
		b = t.AppendFormat(b, "Jan _2 15:04:05")
		b = append(b, " web"...)
		b = strconv.AppendInt(b, int64(1+s.rng.IntN(4)), 10)
		b = append(b, " sshd["...)
		b = strconv.AppendInt(b, int64(1000+s.rng.IntN(30000)), 10)
		b = append(b, "]: "...)
		switch s.rng.IntN(5) {
		case 0:
			b = append(b, "Accepted publickey for "...)
			b = append(b, s.pick(synthUsers)...)
			b = append(b, " from "...)
			b = s.ip(b)
			b = append(b, " port "...)
			b = strconv.AppendInt(b, int64(1024+s.rng.IntN(60000)), 10)
			b = append(b, " ssh2\n"...)
		case 1, 2:
			b = append(b, "Failed password for invalid user "...)
			b = append(b, s.pick(synthUsers)...)
			b = append(b, " from "...)
			b = s.ip(b)
			b = append(b, " port "...)
			b = strconv.AppendInt(b, int64(1024+s.rng.IntN(60000)), 10)
			b = append(b, " ssh2\n"...)
		case 3:
			b = append(b, "error: maximum authentication attempts exceeded for root from "...)
			b = s.ip(b)
			b = append(b, " [preauth]\n"...)
		default:
			b = append(b, "Connection closed by "...)
			b = s.ip(b)
			b = append(b, " [preauth]\n"...)
		}
	case 2: // nginx access
		b = s.ip(b)
		b = append(b, " - - ["...)
		b = t.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
		b = append(b, "] \"GET "...)
		b = append(b, s.pick(synthPaths)...)
		b = append(b, " HTTP/1.1\" "...)
		code := 200
		if s.rng.IntN(50) == 0 {
			code = 502
		}
		b = strconv.AppendInt(b, int64(code), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(s.rng.IntN(50000)), 10)
		b = append(b, " \"-\" \"Mozilla/5.0\"\n"...)
	case 3: // JSON
		b = append(b, `{"ts":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"`...)
		lvl := s.level()
		b = append(b, lvl...)
		b = append(b, `","msg":"`...)
		if lvl == "ERROR" {
			b = append(b, "upstream "...)
			b = s.ip(b)
			b = append(b, ` refused connection","attempt":`...)
		} else {
			b = append(b, "job "...)
			b = appendHex(b, s.rng.Uint64())
			b = append(b, ` finished","took_ms":`...)
		}
		b = strconv.AppendInt(b, int64(s.rng.IntN(1000)), 10)
		b = append(b, "}\n"...)
	default: // klog
		lvl := s.level()
		if lvl == "DEBUG" {
			lvl = "INFO" // klog has only I, W, E and F
		}
		b = append(b, lvl[0])
		b = t.AppendFormat(b, "0102 15:04:05.000000")
		b = append(b, "    "...)
		b = strconv.AppendInt(b, int64(1+s.rng.IntN(99)), 10)
		b = append(b, " controller.go:"...)
		b = strconv.AppendInt(b, int64(100+s.rng.IntN(300)), 10)
		b = append(b, "] "...)
		b = append(b, "Reconciled pod default/web-"...)
		b = appendHex(b, s.rng.Uint64()&0xffffff)
		b = append(b, " in "...)
		b = strconv.AppendFloat(b, s.rng.Float64()*3, 'f', 3, 64)
		b = append(b, "s\n"...)
	}
	return b
}

// burstLine is one record of a planted burst, in the current layout's
// timestamp style so the burst lands in the right minute.
func (s *synth) burstLine(b []byte, t time.Time, layout int) []byte {
	switch layout {
	case 1:
		b = t.AppendFormat(b, "Jan _2 15:04:05")
		b = append(b, " db1 postgres["...)
		b = strconv.AppendInt(b, int64(100+s.rng.IntN(900)), 10)
		b = append(b, "]: FATAL: remaining connection slots are reserved\n"...)
		return b
	case 2:
		b = s.ip(b)
		b = append(b, " - - ["...)
		b = t.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
		b = append(b, "] \"POST /api/v1/orders HTTP/1.1\" 503 0 \"-\" \"client\"\n"...)
		return b
	}
	b = t.AppendFormat(b, "2006-01-02 15:04:05,000")
	b = append(b, " ERROR [db-pool] c.e.db.Pool - Connection pool exhausted: 0 of "...)
	b = strconv.AppendInt(b, int64(50+s.rng.IntN(3)), 10)
	b = append(b, " connections free, waited "...)
	b = strconv.AppendInt(b, int64(s.rng.IntN(30000)), 10)
	b = append(b, "ms\n"...)
	return b
}

func appendHex(b []byte, v uint64) []byte { return strconv.AppendUint(b, v, 16) }
