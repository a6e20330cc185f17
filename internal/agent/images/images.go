// Package images resolves the image a pod names to the program its container runs,
// without a container runtime:
//   - images built into kubesvc (nginx, httpd, kubernetes-bootcamp, agnhost, pause),
//     with any registry prefix and tag, run kubesvc itself in a hidden mode;
//   - inside a container of a built-in image, the image's own program paths
//     (/agnhost, nginx) run the built-in, and every other command comes from the
//     machine's filesystem;
//   - a container of any other image whose command is set runs that program from the
//     machine; --image-map IMAGE=PROGRAM adds mappings;
//   - anything else cannot run: ErrUnknownImage, with a message that names the
//     built-in images and the command: escape (the agent shows it as
//     ErrImagePull/ImagePullBackOff).
package images

import "errors"

// ErrUnknownImage: the image is neither built in nor mapped, and the container sets
// no command.
var ErrUnknownImage = errors.New("image is not built into kubesvc")
