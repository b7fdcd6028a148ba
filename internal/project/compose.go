package project

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"btl/internal/dotenv"
)

// ignoredTop are top-level keys of process-compose files that change
// nothing of what btl runs: they are accepted without a word.
var ignoredTop = map[string]bool{"version": true, "is_strict": true}

// composeParser walks a process-compose document, node by node, so that
// every error and every ignored key has its line.
type composeParser struct {
	f       *File
	ignored map[string]bool
}

func parseCompose(path string, data []byte) (*File, error) {
	p := &composeParser{f: &File{Path: path, Kind: KindCompose}, ignored: map[string]bool{}}
	root, err := parseYAML(data)
	if err != nil {
		e := &Error{Path: path, Msg: err.Error()}
		var se *yaml.SyntaxError
		if errors.As(err, &se) {
			e.Msg = strings.ReplaceAll(se.Message, "\t", `\t`)
			if se.Token != nil && se.Token.Position != nil {
				e.Line = se.Token.Position.Line
			}
		}
		return nil, e
	}
	if root == nil {
		return nil, &Error{Path: path, Msg: "empty file (it needs processes:)"}
	}
	if root.Kind != mappingNode {
		return nil, p.errorf(root, "", "the file must be a mapping with processes:")
	}
	var global []string
	var procs *node
	for k, v := range pairs(root) {
		switch k.Value {
		case "processes":
			procs = v
			if v.Kind != mappingNode || len(v.Content) == 0 {
				return nil, p.errorf(v, "processes", "must map each process's name to its definition")
			}
			for k, v := range pairs(v) {
				e, err := p.process(k, v)
				if err != nil {
					return nil, err
				}
				p.f.Entries = append(p.f.Entries, e)
			}
		case "environment":
			if global, err = p.env(v, "environment"); err != nil {
				return nil, err
			}
		default:
			if !ignoredTop[k.Value] {
				p.ignore(k, k.Value)
			}
		}
	}
	if procs == nil {
		return nil, p.errorf(root, "processes", "missing")
	}
	for i := range p.f.Entries {
		e := &p.f.Entries[i]
		e.Env = append(slices.Clone(global), e.Env...)
	}
	return p.f, nil
}

// pairs yields a mapping node's keys and values.
func pairs(n *node) func(func(k, v *node) bool) {
	return func(yield func(k, v *node) bool) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !yield(n.Content[i], n.Content[i+1]) {
				return
			}
		}
	}
}

func (p *composeParser) errorf(n *node, key, format string, a ...any) error {
	return &Error{Path: p.f.Path, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, a...)}
}

// ignore notes a key btl does not support, once.
func (p *composeParser) ignore(k *node, key string) {
	if p.ignored[key] {
		return
	}
	p.ignored[key] = true
	p.f.Ignored = append(p.f.Ignored, fmt.Sprintf("%s (line %d)", key, k.Line))
}

func (p *composeParser) process(k, v *node) (Entry, error) {
	name := k.Value
	at := "processes." + name
	e := Entry{Name: name, Line: k.Line}
	if err := checkEntryName(name); err != nil {
		return e, p.errorf(k, at, "%v", err)
	}
	if v.Kind != mappingNode {
		return e, p.errorf(v, at, "must be a mapping with command:")
	}
	var err error
	for k, v := range pairs(v) {
		key := at + "." + k.Value
		switch k.Value {
		case "command":
			if e.Command, err = p.str(v, key); err != nil {
				return e, err
			}
		case "working_dir":
			if e.Dir, err = p.str(v, key); err != nil {
				return e, err
			}
		case "environment":
			if e.Env, err = p.env(v, key); err != nil {
				return e, err
			}
		case "depends_on":
			if e.Deps, err = p.deps(v, key); err != nil {
				return e, err
			}
		case "readiness_probe":
			if err := p.probe(v, key, &e); err != nil {
				return e, err
			}
		case "ready_log_line":
			s, err := p.str(v, key)
			if err != nil {
				return e, err
			}
			if e.Ready == nil {
				e.Ready = &Probe{}
			}
			e.Ready.LogLine = s
		case "availability":
			if e.Restart, err = p.availability(v, key); err != nil {
				return e, err
			}
		case "disabled":
			if !v.boolean(&e.Disabled) {
				return e, p.errorf(v, key, "must be true or false")
			}
		default:
			p.ignore(k, key)
		}
	}
	if strings.TrimSpace(e.Command) == "" {
		return e, p.errorf(k, at+".command", "missing: each process needs a command")
	}
	e.Argv = Argv(e.Command)
	return e, nil
}

func (p *composeParser) str(v *node, key string) (string, error) {
	if v.Kind != scalarNode || v.Kind == nullNode {
		return "", p.errorf(v, key, "must be a string")
	}
	return v.Value, nil
}

func (p *composeParser) num(v *node, key string) (float64, error) {
	var f float64
	if v.Kind != scalarNode || !v.float(&f) || f < 0 {
		return 0, p.errorf(v, key, "must be a number, 0 or more")
	}
	return f, nil
}

func (p *composeParser) port(v *node, key string) (int, error) {
	var n int
	if v.Kind != scalarNode || !v.integer(&n) || n < 1 || n > 65535 {
		return 0, p.errorf(v, key, "must be a TCP port from 1 to 65535")
	}
	return n, nil
}

// env reads an environment: a list of NAME=value strings, or a mapping.
func (p *composeParser) env(v *node, key string) ([]string, error) {
	var out []string
	switch v.Kind {
	case sequenceNode:
		for _, item := range v.Content {
			s, err := p.str(item, key)
			if err != nil {
				return nil, err
			}
			name, _, ok := strings.Cut(s, "=")
			if !ok || !dotenv.ValidName(name) {
				return nil, p.errorf(item, key, "%q is not NAME=value", s)
			}
			out = append(out, s)
		}
	case mappingNode:
		for k, val := range pairs(v) {
			if !dotenv.ValidName(k.Value) {
				return nil, p.errorf(k, key, "%q is not a variable name", k.Value)
			}
			s, err := p.str(val, key+"."+k.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, k.Value+"="+s)
		}
	default:
		return nil, p.errorf(v, key, "must be a list of NAME=value")
	}
	return out, nil
}

func (p *composeParser) deps(v *node, key string) ([]Dep, error) {
	if v.Kind != mappingNode {
		return nil, p.errorf(v, key, "must map each process depended on to its condition")
	}
	var out []Dep
	for k, val := range pairs(v) {
		d := Dep{Name: k.Value, Condition: Started, Line: k.Line}
		at := key + "." + k.Value
		if val.Kind == mappingNode {
			for ck, cv := range pairs(val) {
				if ck.Value != "condition" {
					p.ignore(ck, at+"."+ck.Value)
					continue
				}
				s, err := p.str(cv, at+".condition")
				if err != nil {
					return nil, err
				}
				switch c := Condition(s); c {
				case Started, Healthy, Completed:
					d.Condition = c
				default:
					return nil, p.errorf(cv, at+".condition", "unknown condition %q (use %s, %s or %s)", s, Started, Healthy, Completed)
				}
			}
		} else if val.Kind != nullNode {
			return nil, p.errorf(val, at, "must be a mapping with condition:")
		}
		out = append(out, d)
	}
	return out, nil
}

func (p *composeParser) probe(v *node, key string, e *Entry) error {
	if v.Kind != mappingNode {
		return p.errorf(v, key, "must be a mapping with http_get, exec or tcp_socket")
	}
	if e.Ready == nil {
		e.Ready = &Probe{}
	}
	r := e.Ready
	var err error
	for k, val := range pairs(v) {
		at := key + "." + k.Value
		switch k.Value {
		case "http_get":
			if val.Kind != mappingNode {
				return p.errorf(val, at, "must be a mapping with port:")
			}
			h := &HTTPGet{Scheme: "http", Host: "127.0.0.1", Path: "/"}
			for hk, hv := range pairs(val) {
				hat := at + "." + hk.Value
				switch hk.Value {
				case "host":
					h.Host, err = p.str(hv, hat)
				case "scheme":
					h.Scheme, err = p.str(hv, hat)
					if err == nil && h.Scheme != "http" && h.Scheme != "https" {
						err = p.errorf(hv, hat, "must be http or https")
					}
				case "path":
					h.Path, err = p.str(hv, hat)
				case "port":
					h.Port, err = p.port(hv, hat)
				default:
					p.ignore(hk, hat)
				}
				if err != nil {
					return err
				}
			}
			if h.Port == 0 {
				return p.errorf(val, at+".port", "missing")
			}
			r.HTTP = h
		case "exec":
			if val.Kind != mappingNode {
				return p.errorf(val, at, "must be a mapping with command:")
			}
			for xk, xv := range pairs(val) {
				xat := at + "." + xk.Value
				switch xk.Value {
				case "command":
					r.Exec, err = p.str(xv, xat)
				case "working_dir":
					r.ExecDir, err = p.str(xv, xat)
				default:
					p.ignore(xk, xat)
				}
				if err != nil {
					return err
				}
			}
			if strings.TrimSpace(r.Exec) == "" {
				return p.errorf(val, at+".command", "missing")
			}
		case "tcp_socket":
			if val.Kind != mappingNode {
				return p.errorf(val, at, "must be a mapping with port:")
			}
			for tk, tv := range pairs(val) {
				if tk.Value != "port" {
					p.ignore(tk, at+"."+tk.Value)
					continue
				}
				if r.Port, err = p.port(tv, at+".port"); err != nil {
					return err
				}
			}
			if r.Port == 0 {
				return p.errorf(val, at+".port", "missing")
			}
		case "initial_delay_seconds":
			r.InitialDelay, err = p.num(val, at)
		case "period_seconds":
			r.Period, err = p.num(val, at)
		case "timeout_seconds":
			r.Timeout, err = p.num(val, at)
		default:
			p.ignore(k, at)
		}
		if err != nil {
			return err
		}
	}
	if r.HTTP == nil && r.Exec == "" && r.Port == 0 && r.LogLine == "" {
		return p.errorf(v, key, "needs http_get, exec or tcp_socket")
	}
	return nil
}

// availability reads availability.restart and max_restarts as btl's
// --restart policy.
func (p *composeParser) availability(v *node, key string) (string, error) {
	if v.Kind != mappingNode {
		return "", p.errorf(v, key, "must be a mapping with restart:")
	}
	mode, max := "no", 0
	for k, val := range pairs(v) {
		at := key + "." + k.Value
		switch k.Value {
		case "restart":
			s, err := p.str(val, at)
			if err != nil {
				return "", err
			}
			switch s {
			case "no":
				mode = "no"
			case "on_failure":
				mode = "on-failure"
			case "always":
				mode = "always"
			default:
				return "", p.errorf(val, at, "unknown policy %q (btl supports no, on_failure and always)", s)
			}
		case "max_restarts":
			if val.Kind != scalarNode || !val.integer(&max) || max < 0 || max > 10000 {
				return "", p.errorf(val, at, "must be a whole number from 0 to 10000")
			}
		default:
			p.ignore(k, at)
		}
	}
	if mode != "no" && max > 0 {
		mode += ":" + strconv.Itoa(max)
	}
	return mode, nil
}

// The kinds of node the walker sees.
const (
	nullNode = iota
	scalarNode
	mappingNode
	sequenceNode
)

// node is a YAML node as the walker reads it: a mapping's Content holds
// its keys and values in turn, a sequence's its items.
type node struct {
	Kind    int
	Line    int
	Value   string // a scalar's text
	Content []*node
}

// parseYAML parses data's first document; nil for an empty one.
func parseYAML(data []byte) (*node, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, err
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil, nil
	}
	anchors := map[string]*node{}
	return convert(f.Docs[0].Body, anchors), nil
}

// convert turns the parser's tree into nodes, resolving aliases.
func convert(n ast.Node, anchors map[string]*node) *node {
	out := &node{}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		out.Line = tk.Position.Line
	}
	switch n := n.(type) {
	case *ast.MappingNode:
		out.Kind = mappingNode
		for _, mv := range n.Values {
			out.Content = append(out.Content, convert(mv.Key, anchors), convert(mv.Value, anchors))
		}
	case *ast.MappingValueNode:
		out.Kind = mappingNode
		out.Content = []*node{convert(n.Key, anchors), convert(n.Value, anchors)}
	case *ast.MappingKeyNode:
		return convert(n.Value, anchors)
	case *ast.SequenceNode:
		out.Kind = sequenceNode
		for _, v := range n.Values {
			out.Content = append(out.Content, convert(v, anchors))
		}
	case *ast.NullNode:
		out.Kind = nullNode
	case *ast.StringNode:
		out.Kind, out.Value = scalarNode, n.Value
	case *ast.LiteralNode:
		out.Kind, out.Value = scalarNode, n.Value.Value
	case *ast.TagNode:
		return convert(n.Value, anchors)
	case *ast.AnchorNode:
		v := convert(n.Value, anchors)
		anchors[n.Name.String()] = v
		return v
	case *ast.AliasNode:
		if v, ok := anchors[n.Value.String()]; ok {
			return v
		}
		out.Kind = nullNode
	case ast.ScalarNode:
		out.Kind = scalarNode
		if tk := n.GetToken(); tk != nil {
			out.Value = tk.Value
		}
	default:
		out.Kind = nullNode
	}
	return out
}

// boolean reads a true or false scalar into b.
func (n *node) boolean(b *bool) bool {
	if n.Kind != scalarNode {
		return false
	}
	v, err := strconv.ParseBool(n.Value)
	*b = v
	return err == nil
}

func (n *node) integer(i *int) bool {
	v, err := strconv.Atoi(n.Value)
	*i = v
	return n.Kind == scalarNode && err == nil
}

func (n *node) float(f *float64) bool {
	v, err := strconv.ParseFloat(n.Value, 64)
	*f = v
	return n.Kind == scalarNode && err == nil
}
