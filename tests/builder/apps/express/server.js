const express = require("express");
const fs = require("fs");

const app = express();
app.get("/", (req, res) => res.send(`hello from express on port ${process.env.PORT}\n`));
app.get("/built", (req, res) => res.send(fs.readFileSync(__dirname + "/built.txt", "utf8")));
app.listen(process.env.PORT, () => console.log(`listening on ${process.env.PORT}`));
