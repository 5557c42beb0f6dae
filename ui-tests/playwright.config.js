/**
 * Galata on the machine's Chromium (no downloaded browser, no video: both need the network).
 * Three servers: JupyterLab with prophecy-jupyter; a Git smart-HTTP server with the team's
 * repository; a Livy gateway that wants a token the tests never have (they only get refused).
 * The Jupyter server's config also starts, in its own process, what the Jobs test needs: the
 * Snowflake stand-in and another Git server (jobs_setup.py).
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

/** Each server is asked to stop, so that it removes what it made in /tmp (a kill leaves it). */
const gracefulShutdown = { signal: 'SIGTERM', timeout: 20000 };

module.exports = {
  ...baseConfig,
  timeout: 120000,
  workers: 1,
  // A browser test that fails once and then passes is reported as flaky, not hidden.
  retries: 1,
  use: {
    ...baseConfig.use,
    video: 'off',
    // A first attempt that fails keeps its trace (network, console, DOM): a flaky test's retry
    // may pass, and then only the failed attempt says why.
    trace: 'retain-on-failure',
    launchOptions: { executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] }
  },
  expect: { toHaveScreenshot: { maxDiffPixelRatio: 0.01 } },
  webServer: [
    {
      command: 'jlpm start',
      url: 'http://localhost:8888/lab',
      timeout: 120000,
      reuseExistingServer: false,
      gracefulShutdown
    },
    {
      // One repository per attempt of the Git test, so that its retry starts from a fresh one.
      command: 'python -m tests.servers.git_http --port 8996 --repository analytics --repository analytics-retry1',
      cwd: '..',
      env: { GIT_TEST_TOKEN: 'ui-git-token-5b8e' },
      url: 'http://127.0.0.1:8996/analytics.git/info/refs?service=git-upload-pack',
      timeout: 60000,
      reuseExistingServer: false,
      gracefulShutdown
    },
    {
      command: 'jupyter prophecy gateway --host 127.0.0.1 --port 8997 --isolation process',
      env: { PROPHECY_GATEWAY_TOKEN: `ui-${process.pid}-${Date.now()}` },
      url: 'http://127.0.0.1:8997/sessions',
      timeout: 60000,
      reuseExistingServer: false,
      gracefulShutdown
    }
  ]
};
