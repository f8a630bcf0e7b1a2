import type { Preview } from '@storybook/react-vite'
import '../demo/src/styles.css'

const preview: Preview = {
  parameters: { layout: 'padded' },
}
export default preview
