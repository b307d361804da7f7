package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the report for a terminal: the machine, every figure,
// then every target with its status.
func (rep *Report) WriteTable(w io.Writer) error {
	m := rep.Machine
	fmt.Fprintf(w, "agentfed-bench: %s per measurement, %d-byte messages, %d CPUs (%s), GOMAXPROCS %d, %s %s/%s, took %s\n\n",
		rep.Duration, rep.MessageBytes, m.CPUs, orUnknown(m.CPUModel), m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch, rep.Elapsed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "measurement\tfigure\t%12s\tunit\n", "value")
	for _, r := range rep.Results {
		name := r.Name
		switch {
		case r.Skipped != "":
			fmt.Fprintf(tw, "%s\t%s\n", name, r.Skipped)
			continue
		case r.Error != "":
			fmt.Fprintf(tw, "%s\tFAILED: %s\n", name, r.Error)
		}
		for _, f := range r.Figures {
			fmt.Fprintf(tw, "%s\t%s\t%12s\t%s\n", name, f.Name, format(f.Value, f.Unit), f.Unit)
			name = ""
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "target\t%14s\tgoal\tstatus\n", "value")
	for _, t := range rep.Targets {
		v := "-"
		if t.Status != StatusNotMeasured {
			v = format(t.Value, t.Unit) + " " + t.Unit
		}
		fmt.Fprintf(tw, "%s\t%14s\t%s\t%s\n", t.Name, v, orDash(t.Goal), t.Status)
	}
	return tw.Flush()
}

// format prints v with the precision its unit deserves.
func format(v float64, unit string) string {
	switch unit {
	case unitRate, unitCount:
		return fmt.Sprintf("%.0f", v)
	case unitRatio:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown CPU"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
