// Command probe is what the end-to-end tests run in pods of a hosted cluster: one network check per
// run (a DNS lookup, the API server's /version as an in-cluster client, an HTTP GET) or a server
// or sleeper to be checked. Its outcome is one line, `ok …` or `fail …`, on stdout and in
// /dev/termination-log, where the kubelet reads it into the pod's status
// (terminationMessagePath), so the tests read results from the API, not from logs. Exit 0 on
// success, 1 on failure, 2 on a usage error. Built with -tags netgo: lookups read /etc/resolv.conf
// and /etc/hosts as the kubelet writes them for the pod, without a C library.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The image's tag. scripts/addon-build.sh builds .cache/addons/probe-<version> once and a node keeps
// an image by its name, so bump it with every change.
const version = "v1"

const usage = `usage:
  probe resolve NAME [--expect-ip IP] [--timeout 30s]
  probe api-version [--host NAME] [--timeout 30s]
  probe get URL [--expect SUBSTRING] [--timeout 30s]
  probe serve [--port 8080]
  probe sleep
`

// Mounted by the kubelet for every container; elsewhere (a test on this machine) it is absent.
const terminationLog = "/dev/termination-log"

const serviceAccount = "/var/run/secrets/kubernetes.io/serviceaccount"

type usageError string

func (e usageError) Error() string { return string(e) }

func main() {
	outcome, err := run(os.Args[1:])
	line, code := "ok "+outcome, 0
	var bad usageError
	if errors.As(err, &bad) {
		fmt.Fprintf(os.Stderr, "probe %s\n%s", version, usage)
		line, code = "fail usage: "+bad.Error(), 2
	} else if err != nil {
		line, code = "fail "+err.Error(), 1
	}
	report(line)
	os.Exit(code)
}

// report prints the outcome and writes it as the termination message; the file is never created,
// so outside a pod nothing is written.
func report(line string) {
	line = strings.ReplaceAll(line, "\n", " ")
	fmt.Println(line)
	if f, err := os.OpenFile(terminationLog, os.O_WRONLY|os.O_TRUNC, 0); err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

// What each subcommand takes: how many positional arguments, which flags.
var commands = map[string]struct {
	args  int
	flags []string
}{
	"resolve":     {1, []string{"expect-ip", "timeout"}},
	"api-version": {0, []string{"host", "timeout"}},
	"get":         {1, []string{"expect", "timeout"}},
	"serve":       {0, []string{"port"}},
	"sleep":       {0, nil},
}

func run(args []string) (string, error) {
	if len(args) == 0 {
		return "", usageError("no subcommand")
	}
	command, known := commands[args[0]]
	if !known {
		return "", usageError(fmt.Sprintf("unknown subcommand %q", args[0]))
	}
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	timeout := flags.Duration("timeout", 30*time.Second, "")
	expectIP, host, expect := flags.String("expect-ip", "", ""), flags.String("host", "", ""), flags.String("expect", "", "")
	port := flags.Int("port", 8080, "")
	positional, err := parse(flags, args[1:])
	flags.Visit(func(f *flag.Flag) {
		if err == nil && !slices.Contains(command.flags, f.Name) {
			err = usageError(fmt.Sprintf("%s takes no --%s", args[0], f.Name))
		}
	})
	wantIP, ipErr := netip.ParseAddr(*expectIP)
	target, urlErr := url.Parse(strings.Join(positional, ""))
	switch {
	case err != nil:
		return "", err
	case len(positional) != command.args:
		return "", usageError(fmt.Sprintf("%s takes %d argument(s), got %q", args[0], command.args, positional))
	case *expectIP != "" && ipErr != nil:
		return "", usageError(fmt.Sprintf("expected --expect-ip to be an IP address, got %q", *expectIP))
	case args[0] == "get" && (urlErr != nil || !strings.HasPrefix(target.Scheme, "http") || target.Host == ""):
		return "", usageError(fmt.Sprintf("expected URL to be an http:// or https:// URL, got %q", positional[0]))
	case *port < 1 || *port > 65535:
		return "", usageError(fmt.Sprintf("expected --port to be 1-65535, got %d", *port))
	}
	switch args[0] {
	case "resolve":
		return resolve(*timeout, positional[0], wantIP)
	case "api-version":
		return apiVersion(*timeout, *host)
	case "get":
		return get(*timeout, positional[0], *expect)
	case "serve":
		return serve(*port)
	}
	<-terminated().Done()
	return "sleep: terminated", nil
}

// parse reads flags before and after the positional arguments: the flag package alone stops at the
// first of them.
func parse(flags *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := flags.Parse(args); err != nil {
			return nil, usageError(fmt.Sprintf("%s: %v", flags.Name(), err))
		}
		if flags.NArg() == 0 {
			return positional, nil
		}
		positional, args = append(positional, flags.Arg(0)), flags.Args()[1:]
	}
}

func resolve(timeout time.Duration, name string, want netip.Addr) (string, error) {
	resolver := &net.Resolver{PreferGo: true}
	var addrs []string
	err := retry(timeout, func(ctx context.Context) (err error) {
		if addrs, err = resolver.LookupHost(ctx, name); err != nil {
			return err
		}
		if want.IsValid() && !slices.ContainsFunc(addrs, func(a string) bool {
			got, err := netip.ParseAddr(a)
			return err == nil && got.Unmap() == want.Unmap()
		}) {
			return fmt.Errorf("%s is not among %s", want, strings.Join(addrs, ", "))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", name, err)
	}
	return fmt.Sprintf("resolve %s -> %s", name, strings.Join(addrs, ", ")), nil
}

// apiVersion is an in-cluster client as client-go's rest.InClusterConfig makes one: the service
// account's token and CA, the address the kubelet puts in KUBERNETES_SERVICE_HOST and _PORT.
func apiVersion(timeout time.Duration, hostOverride string) (string, error) {
	token, err := os.ReadFile(serviceAccount + "/token")
	caPEM, caErr := os.ReadFile(serviceAccount + "/ca.crt")
	roots := x509.NewCertPool()
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	switch {
	case err != nil || caErr != nil:
		return "", fmt.Errorf("api-version: %w", errors.Join(err, caErr))
	case !roots.AppendCertsFromPEM(caPEM):
		return "", fmt.Errorf("api-version: no certificate in %s/ca.crt", serviceAccount)
	case host == "" || port == "":
		return "", errors.New("api-version: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
	}
	if hostOverride != "" {
		host = hostOverride // and so the name the server's certificate must carry
	}
	endpoint := "https://" + net.JoinHostPort(host, port) + "/version"
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	var info struct{ GitVersion string }
	err = retry(timeout, func(ctx context.Context) error {
		body, err := fetch(ctx, client, endpoint, "Bearer "+strings.TrimSpace(string(token)))
		if err != nil {
			return err
		}
		return json.Unmarshal(body, &info)
	})
	if err != nil {
		return "", fmt.Errorf("api-version %s: %w", endpoint, err)
	}
	return fmt.Sprintf("api-version %s -> %s", endpoint, info.GitVersion), nil
}

func get(timeout time.Duration, target, expect string) (string, error) {
	var body []byte
	err := retry(timeout, func(ctx context.Context) (err error) {
		if body, err = fetch(ctx, http.DefaultClient, target, ""); err != nil {
			return err
		}
		if !strings.Contains(string(body), expect) {
			return fmt.Errorf("the body does not contain %q: %.200q", expect, body)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("get %s: %w", target, err)
	}
	fmt.Println(strings.TrimSuffix(string(body), "\n"))
	return fmt.Sprintf("get %s -> 200, %d bytes", target, len(body)), nil
}

// fetch GETs target and returns the body of a 200; the error of any other status quotes the body.
func fetch(ctx context.Context, client *http.Client, target, authorization string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d: %.200q", resp.StatusCode, body)
	}
	return body, err
}

// retry calls attempt, each call bounded to 5s, until it succeeds or timeout has passed; the error
// is the last attempt's, which says more than "deadline exceeded" would.
func retry(timeout time.Duration, attempt func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), min(time.Until(deadline), 5*time.Second))
		err := attempt(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Until(deadline) < time.Second {
			return fmt.Errorf("%w (for %s)", err, timeout)
		}
		time.Sleep(time.Second)
	}
}

func serve(port int) (string, error) {
	done := terminated() // before anyone can see the port
	hostname, err := os.Hostname()
	listener, listenErr := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err = errors.Join(err, listenErr); err != nil {
		return "", fmt.Errorf("serve: %w", err)
	}
	answer := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "hostname=%s\n", hostname) }
	server := &http.Server{Handler: http.HandlerFunc(answer), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("serving hostname=%s on :%d\n", hostname, port)
	failed := make(chan error, 1)
	go func() { failed <- server.Serve(listener) }()
	select {
	case err := <-failed:
		return "", fmt.Errorf("serve :%d: %w", port, err)
	case <-done.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	server.Shutdown(ctx)
	return fmt.Sprintf("serve :%d: terminated", port), nil
}

// terminated is done on SIGTERM (what the kubelet sends first) or SIGINT. A container's PID 1 gets
// no default action for them, so without a handler it would wait out the grace period for SIGKILL.
func terminated() context.Context {
	ctx, _ := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	return ctx
}
