package dbtool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
)

// `db init` prepares the data directory before PostgreSQL starts, without the image's
// entrypoint: initdb on an empty volume, the instance's role and database when missing, and on
// every start the role's password from the credentials Secret, so that a password changed there
// reaches the database. It runs a temporary server for the SQL, reachable only through a unix
// socket in a private directory (no TCP: Kinto cannot connect meanwhile), where a pg_hba file of
// its own trusts the superuser, so that nothing depends on the user name the image gives the
// pod's uid. Values reach the SQL as settings of the session (PGOPTIONS), which the SQL quotes
// with format's %I and %L: nothing is spliced into SQL text, whatever the password holds.

// initPort names the temporary server's socket; no TCP port is opened.
const initPort = "5432"

// Settings of the init's sessions that carry its values into the SQL.
const (
	settingRole     = "kinto_init.role"
	settingDatabase = "kinto_init.database"
	settingPassword = "kinto_init.password"
)

// createSQL creates the role and the database where they are missing (a first init interrupted
// between initdb and here completes on the next start).
const createSQL = `SELECT format('CREATE ROLE %I LOGIN', current_setting('` + settingRole + `'))
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = current_setting('` + settingRole + `')) \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0',
  current_setting('` + settingDatabase + `'), current_setting('` + settingRole + `'), 'UTF8')
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = current_setting('` + settingDatabase + `')) \gexec
`

// passwordSQL sets the role's password, hashed with SCRAM by the server.
const passwordSQL = `DO $$
BEGIN
  EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', current_setting('` + settingRole + `'), current_setting('` + settingPassword + `'));
END
$$;
`

// serverStartTimeout bounds the temporary server's start and stop (recovery after a crash
// included).
const serverStartTimeout = 5 * time.Minute

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := noArguments(args); err != nil {
		return err
	}
	env, err := requiredEnv(backupenv.PGData, backupenv.DatabaseRole, backupenv.DatabaseName, backupenv.DatabasePassword)
	if err != nil {
		return err
	}
	pgdata, role, database, password := env[0], env[1], env[2], env[3]
	if problem := PasswordProblem(password); problem != "" {
		return fmt.Errorf("the database password (%s) is refused: %s", backupenv.DatabasePassword, problem)
	}

	if fresh, err := needsInitdb(pgdata); err != nil {
		return err
	} else if fresh {
		if err := runProgram(ctx, stdout, stderr, "initdb", "--pgdata="+pgdata, "--username=postgres",
			"--encoding=UTF8", "--no-locale", "--auth-local=peer", "--auth-host=scram-sha-256"); err != nil {
			return err
		}
	}
	// Kinto's only way in: its role, to its database, with a password.
	if err := ensureLine(filepath.Join(pgdata, "pg_hba.conf"), fmt.Sprintf("host %s %s all scram-sha-256", database, role)); err != nil {
		return err
	}

	srv, err := startServer(ctx, pgdata)
	if err != nil {
		return err
	}
	defer srv.stop()
	if err := srv.psql(ctx, stdout, stderr, createSQL, pgOption(settingRole, role), pgOption(settingDatabase, database)); err != nil {
		return fmt.Errorf("creating the role and the database: %w", err)
	}
	// psql's output is not shown: an error's context may quote the password.
	if err := srv.psql(ctx, io.Discard, io.Discard, passwordSQL, pgOption(settingRole, role), pgOption(settingPassword, password),
		pgOption("password_encryption", "scram-sha-256")); err != nil {
		if errors.Is(err, errInterrupted) {
			return err
		}
		return errors.New("setting the password failed (psql's output is withheld: it may quote the password)")
	}
	if err := srv.stop(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database %s ready, role %s's password set\n", database, role)
	return nil
}

// needsInitdb tells whether the data directory holds no cluster yet.
func needsInitdb(pgdata string) (bool, error) {
	info, err := os.Stat(filepath.Join(pgdata, "PG_VERSION"))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	return err == nil && info.Size() == 0, err
}

// ensureLine appends line to the file at path unless a line of it already reads so.
func ensureLine(path, line string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l == line {
			return nil
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pgOption is a setting for PGOPTIONS, which the server splits at white space unless escaped
// by a backslash (which escapes itself).
func pgOption(name, value string) string {
	var b strings.Builder
	b.WriteString("-c " + name + "=")
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '\\' || c == ' ' || (c >= '\t' && c <= '\r') {
			b.WriteByte('\\')
		}
		b.WriteByte(value[i])
	}
	return b.String()
}

// tempServer is the PostgreSQL server `db init` runs for its SQL.
type tempServer struct {
	cmd    *exec.Cmd
	dir    string       // the socket's private directory, and its pg_hba file
	log    bytes.Buffer // the server's output; shown only if it fails to start, before any SQL ran
	exited chan struct{}
	done   bool
}

func startServer(ctx context.Context, pgdata string) (*tempServer, error) {
	dir, err := os.MkdirTemp("", "kinto-db-init-")
	if err != nil {
		return nil, err
	}
	hba := filepath.Join(dir, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte("local all postgres trust\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &tempServer{dir: dir, exited: make(chan struct{})}
	// Stopped by stop, a fast shutdown, rather than by ctx.
	s.cmd = exec.Command("postgres", "-D", pgdata, "-c", "listen_addresses=", "-c", "port="+initPort,
		"-c", "unix_socket_directories="+dir, "-c", "unix_socket_permissions=0700", "-c", "hba_file="+hba,
		// The server's log never holds a statement, nor an error's context.
		"-c", "log_min_error_statement=panic", "-c", "log_error_verbosity=terse")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()

	deadline := time.Now().Add(serverStartTimeout)
	for {
		probe := exec.Command("pg_isready", "--quiet", "--host="+dir, "--port="+initPort, "--username=postgres", "--dbname=postgres")
		if probe.Run() == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			s.done = true
			os.RemoveAll(dir)
			return nil, fmt.Errorf("the temporary server exited while starting (%s):\n%s", s.cmd.ProcessState, s.log.String())
		case <-ctx.Done():
			s.stop()
			return nil, errInterrupted
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("the temporary server did not accept connections within %s", serverStartTimeout)
		}
	}
}

// psql runs script in the postgres database as the superuser, with the session settings
// options.
func (s *tempServer) psql(ctx context.Context, stdout, stderr io.Writer, script string, options ...string) error {
	cmd := program(ctx, stdout, stderr, "psql", "--no-psqlrc", "--no-password", "--quiet", "--host="+s.dir, "--port="+initPort,
		"--username=postgres", "--dbname=postgres", "--set=ON_ERROR_STOP=1", "--file=-")
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = append(os.Environ(), "PGOPTIONS="+strings.Join(options, " "))
	err := cmd.Run()
	if ctx.Err() != nil {
		return errInterrupted
	}
	return exitError("psql", err)
}

// stop shuts the server down (a fast shutdown, as the image's STOPSIGNAL), killing it if it
// takes too long, and removes its directory. Stopping it again does nothing.
func (s *tempServer) stop() error {
	if s.done {
		return nil
	}
	s.done = true
	defer os.RemoveAll(s.dir)
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(serverStartTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("the temporary server did not stop within %s", serverStartTimeout)
	}
	if !s.cmd.ProcessState.Success() {
		return fmt.Errorf("the temporary server did not stop cleanly (%s)", s.cmd.ProcessState)
	}
	return nil
}
