package execenv

import (
	"os"
	"path/filepath"
	"strings"
)

// holdLayers holds the directories of spec's layers from its CodeSource
// and sets LayerDirs; the release it returns lets go of them and of what
// held already held (the function's own code).
func holdLayers(s *Spec, held func()) (func(), error) {
	releases := []func(){held}
	all := func() {
		for _, r := range releases {
			r()
		}
	}
	s.LayerDirs = make([]string, 0, len(s.LayerSHAs))
	for _, sha := range s.LayerSHAs {
		dir, release, err := s.Code.CodeDir(sha)
		if err != nil {
			all()
			return nil, err
		}
		releases = append(releases, release)
		s.LayerDirs = append(s.LayerDirs, dir)
	}
	return all, nil
}

// layerPaths adds the layers' directories to the search paths where AWS
// puts /opt's: PATH ends with /opt/bin, LD_LIBRARY_PATH with /opt/lib,
// PYTHONPATH holds /opt/python/lib/pythonX.Y/site-packages and /opt/python,
// NODE_PATH /opt/nodejs/nodeNN/node_modules and /opt/nodejs/node_modules.
// On AWS the layers are extracted into /opt in order, a later layer's file
// replacing an earlier one's; here each search path lists the layers'
// directories, the last layer first, so that the same file is found. A
// function's own Environment.Variables still replace these defaults.
func layerPaths(s *Spec, env map[string]string) {
	if len(s.LayerDirs) == 0 {
		return
	}
	var bin, lib, py, node []string
	pyVer := strings.TrimPrefix(s.Runtime, "python")
	nodeVer := strings.TrimSuffix(strings.TrimPrefix(s.Runtime, "nodejs"), ".x")
	for i := len(s.LayerDirs) - 1; i >= 0; i-- {
		d := s.LayerDirs[i]
		bin = append(bin, filepath.Join(d, "bin"))
		lib = append(lib, filepath.Join(d, "lib"))
		if strings.HasPrefix(s.Runtime, "python") {
			py = append(py, filepath.Join(d, "python", "lib", "python"+pyVer, "site-packages"), filepath.Join(d, "python"))
		}
		if strings.HasPrefix(s.Runtime, "nodejs") {
			node = append(node, filepath.Join(d, "nodejs", "node"+nodeVer, "node_modules"), filepath.Join(d, "nodejs", "node_modules"))
		}
	}
	env["PATH"] += ":" + strings.Join(bin, ":")
	env["LD_LIBRARY_PATH"] += ":" + strings.Join(lib, ":")
	if len(py) > 0 {
		env["PYTHONPATH"] = strings.Join(py, ":")
	}
	if len(node) > 0 {
		env["NODE_PATH"] = strings.Join(node, ":")
	}
}

// bootstrapOf is the bootstrap of a provided runtime: the function's own,
// else the last layer's that has one, as AWS looks in /var/task and then
// in /opt. A custom runtime is often shipped as a layer.
func bootstrapOf(s *Spec) string {
	own := filepath.Join(s.CodeDir, "bootstrap")
	if _, err := os.Lstat(own); err == nil || len(s.LayerDirs) == 0 {
		return own
	}
	for i := len(s.LayerDirs) - 1; i >= 0; i-- {
		p := filepath.Join(s.LayerDirs[i], "bootstrap")
		if _, err := os.Lstat(p); err == nil {
			return p
		}
	}
	return own
}
