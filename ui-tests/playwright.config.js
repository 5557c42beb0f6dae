/**
 * Galata on the machine's Chromium (no downloaded browser, no video: both need the network).
 * Two servers: JupyterLab with prophecy-jupyter, and a Livy gateway that wants a token the
 * tests never have (its sessions would each start a JVM; the tests only get refused).
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

module.exports = {
  ...baseConfig,
  timeout: 120000,
  workers: 1,
  use: {
    ...baseConfig.use,
    video: 'off',
    launchOptions: { executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] }
  },
  expect: { toHaveScreenshot: { maxDiffPixelRatio: 0.01 } },
  webServer: [
    {
      command: 'jlpm start',
      url: 'http://localhost:8888/lab',
      timeout: 120000,
      reuseExistingServer: false
    },
    {
      command: 'jupyter prophecy gateway --host 127.0.0.1 --port 8997 --isolation process',
      env: { PROPHECY_GATEWAY_TOKEN: `ui-${process.pid}-${Date.now()}` },
      url: 'http://127.0.0.1:8997/sessions',
      timeout: 60000,
      reuseExistingServer: false
    }
  ]
};
