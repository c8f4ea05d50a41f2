// Credentials come from the environment at run time, never from the image.
function signingKey() {
  const key = process.env.JWT_SIGNING_KEY;
  if (!key) {
    throw new Error("JWT_SIGNING_KEY is not set");
  }
  return key;
}

function awsCredentials() {
  return {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
    sessionToken: process.env.AWS_SESSION_TOKEN,
  };
}

module.exports = { signingKey, awsCredentials };
