package lesson

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// NotesServerJS is the full example server of the learner's notes, as they
// wrote it, with the port from the environment and 127.0.0.1 as the
// address (a teaching server should not be reachable from the network).
const NotesServerJS = `const net = require('net');

const server = net.createServer((socket) => {
    console.log("Client connected");

    console.log(socket.address());        // Server info
    console.log(socket.remoteAddress);    // Client IP
    console.log(socket.remotePort);       // Client Port
    console.log(socket.remoteFamily);     // IPv4/IPv6

    socket.on('data', (data) => {
        console.log("Client says:", data.toString());
        socket.write("Hello from server");
    });

    socket.on('close', () => {
        console.log("Client disconnected");
    });

});

server.listen(Number(process.env.PORT), "127.0.0.1", () => {
    console.log("Server listening on port " + process.env.PORT);
});
`

// notesServerStart is how long node may take to say it listens.
const notesServerStart = 10 * time.Second

// notesServer is server.js running under node.
type notesServer struct {
	cmd  *exec.Cmd
	dir  string
	done chan struct{} // closed when node has exited and its output is read
}

// nodeCommand is the node the lesson runs, or "" when there is none.
func (r *runner) nodeCommand() string {
	name := r.opts.Node
	if name == "" {
		name = "node"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return path
}

// stepUnavailable says why none of a step's checks can be seen ("" when
// they can): a notes-server step needs node.
func (r *runner) stepUnavailable(step *Step) string {
	for _, a := range step.Actions {
		if a.Verb == "notes-server" && r.nodeCommand() == "" {
			return "node is not installed: the notes' own server can't run"
		}
	}
	return ""
}

// actNotesServer stops the lesson's server, writes the notes' server.js to
// a temporary directory and runs it with node on the lesson's port, as
// the process runs (the learner, once the playground dropped root), then
// plays a client against it. Without node it does nothing: the step's
// checks read not checkable (stepUnavailable).
func (r *runner) actNotesServer(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	node := r.nodeCommand()
	if node == "" {
		return nil
	}
	r.closePrograms() // the port is node's now
	dir, err := os.MkdirTemp("", "playground-notes-server-")
	if err != nil {
		return err
	}
	s := &notesServer{dir: dir, done: make(chan struct{})}
	script := filepath.Join(dir, "server.js")
	if err := os.WriteFile(script, []byte(NotesServerJS), 0o644); err != nil {
		os.RemoveAll(dir)
		return err
	}
	s.cmd = exec.Command(node, script)
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(r.port))
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("starting node: %w", err)
	}
	r.node = s
	listening := make(chan struct{})
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		said := false
		for sc.Scan() {
			if !said && strings.HasPrefix(sc.Text(), "Server listening") {
				close(listening)
				said = true
			}
		}
	}()
	select {
	case <-listening:
	case <-s.done:
		return fmt.Errorf("node %s exited before it listened on port %d", script, r.port)
	case <-time.After(notesServerStart):
		return fmt.Errorf("node %s did not listen on port %d within %v", script, r.port, notesServerStart)
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.playTheLearner(ctx)
}

// stop ends node and removes its directory.
func (s *notesServer) stop() {
	s.cmd.Process.Kill()
	<-s.done
	s.cmd.Wait()
	os.RemoveAll(s.dir)
}
