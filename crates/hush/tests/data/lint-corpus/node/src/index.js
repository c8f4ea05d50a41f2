const http = require("http");
const jwt = require("jsonwebtoken");
const { signingKey } = require("./auth/credentials");

http
  .createServer((req, res) => {
    const token = (req.headers.authorization || "").replace(/^Bearer /, "");
    try {
      const claims = jwt.verify(token, signingKey());
      res.end(JSON.stringify({ user: claims.sub }));
    } catch (e) {
      res.statusCode = 401;
      res.end();
    }
  })
  .listen(process.env.PORT || 8080);
