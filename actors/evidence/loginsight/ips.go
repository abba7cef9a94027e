package loginsight

import (
	"net/netip"
	"strings"
)

// scanIPs counts the IPv4 and IPv6 addresses on a line. It looks at each
// maximal run of hex digits, dots and colons once, so it is linear.
func (a *analyzer) scanIPs(s string) {
	for i := 0; i < len(s); {
		c := s[i]
		if !isIPByte(c) || (i > 0 && isAlnum(s[i-1])) {
			i++
			continue
		}
		j := i
		colons, dots := 0, 0
		for j < len(s) && isIPByte(s[j]) {
			switch s[j] {
			case ':':
				colons++
			case '.':
				dots++
			}
			j++
		}
		run := s[i:j]
		i = j
		if colons >= 2 {
			if ip, err := netip.ParseAddr(strings.TrimRight(run, ":.")); err == nil {
				a.addIP(ip)
				continue
			}
		}
		if dots >= 3 {
			if ip, ok := dottedQuad(run); ok {
				a.addIP(ip)
			}
		}
	}
}

func (a *analyzer) addIP(ip netip.Addr) {
	if _, ok := a.ips[ip]; ok {
		a.ips[ip]++
		return
	}
	if len(a.ips) >= a.o.MaxIPs {
		a.rep.UniqueIPsCapped = true
		return
	}
	a.ips[ip] = 1
}

func isIPByte(c byte) bool {
	return isDigit(c) || c == '.' || c == ':' || ((c|0x20) >= 'a' && (c|0x20) <= 'f')
}

// dottedQuad reads an IPv4 address at the start of run, refusing longer
// dotted numbers such as versions (1.2.3.4.5).
func dottedQuad(run string) (netip.Addr, bool) {
	var q [4]byte
	i := 0
	for k := 0; k < 4; k++ {
		if k > 0 {
			if i >= len(run) || run[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
		v, n := 0, 0
		for i < len(run) && isDigit(run[i]) && n < 4 {
			v = v*10 + int(run[i]-'0')
			i++
			n++
		}
		if n == 0 || n > 3 || v > 255 {
			return netip.Addr{}, false
		}
		q[k] = byte(v)
	}
	if i < len(run) && (isDigit(run[i]) || (run[i] == '.' && i+1 < len(run) && isDigit(run[i+1]))) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(q), true
}
