package gitops

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cpuSaturation tells whether the machine's CPUs have been all but fully
// busy lately, from /proc/stat (Linux): the share of idle time across all
// CPUs between two samples at least cpuSampleEvery apart. Elsewhere, or
// when /proc/stat cannot be read, it reports false.
type cpuSaturation struct {
	mu        sync.Mutex
	at        time.Time
	idle, all uint64
	saturated bool
}

// cpuSampleEvery is the shortest span the idle share is taken over.
const cpuSampleEvery = time.Second

// saturatedIdle: below this share of idle CPU time the machine is saturated.
const saturatedIdle = 0.05

func (c *cpuSaturation) busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Sub(c.at) < cpuSampleEvery {
		return c.saturated
	}
	idle, all, ok := procStat()
	if !ok {
		c.saturated = false
		return false
	}
	if !c.at.IsZero() && all > c.all {
		c.saturated = float64(idle-c.idle)/float64(all-c.all) < saturatedIdle
	}
	c.at, c.idle, c.all = now, idle, all
	return c.saturated
}

// procStat reads the idle (idle + iowait) and total jiffies of all CPUs.
func procStat() (idle, all uint64, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, v := range fields[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		if i == 8 || i == 9 {
			continue // guest and guest_nice: counted in user and nice already
		}
		all += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return idle, all, true
}
