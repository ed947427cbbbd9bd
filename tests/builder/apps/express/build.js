// The build script: writes a file the server sends, so a test sees that `npm run build` ran.
require("fs").writeFileSync(__dirname + "/built.txt", "built by npm run build\n");
